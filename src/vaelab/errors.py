"""The error types of vaelab: one base, each also a standard Python/scikit-learn type."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class VaelabError(Exception):
    """Base of every error vaelab raises on purpose; the CLI prints these in one line."""


class DataError(VaelabError, ValueError):
    """The data given cannot be used as it is (shape, NaN/inf, range, format)."""


class ConfigError(VaelabError, ValueError):
    """An option or parameter value is unknown or out of range."""


class ModelFileError(VaelabError, ValueError):
    """A saved model directory is missing, incomplete, corrupted or unsafe."""


class DiskFullError(VaelabError, OSError):
    """A write ran out of space; the message names the path, the space needed and what was kept."""


class NotFittedError(VaelabError, _SklearnNotFittedError):
    """A method that needs a fitted model was called before ``fit``."""


class TrainingError(VaelabError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class TrainingInterrupted(TrainingError):
    """Training was stopped by the user (Ctrl-C); the last checkpoint, if any, is kept."""


class ConvergenceWarning(_SklearnConvergenceWarning):
    """Training stopped before it could tell that the model converged (scikit-learn's warning type)."""


class PosteriorCollapseWarning(UserWarning):
    """A fitted VAE has latent dimensions whose posterior ignores the data."""


class DegenerateDensityWarning(UserWarning):
    """A fitted decoder's density is a spike on some features: their learned spread is at its floor."""
