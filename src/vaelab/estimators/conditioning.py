"""What a model is conditioned on, as a part the estimator holds rather than a subclass that overrides it.

Every post-fit method takes an optional ``y`` and hands it to :meth:`indices` of the estimator's
conditioning. :class:`Unconditional` takes no labels: ``fit`` and ``score`` ignore ``y``
(scikit-learn's convention for unsupervised estimators), the other methods refuse one, so that
labels given to the wrong model never pass silently. :class:`ClassLabels` (the conditional VAE)
maps labels to class indices ``(n,)`` int64, the ``y`` its torch module takes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ConfigError, DataError


def check_labels(y, name: str = "y") -> np.ndarray:
    """Class labels as a 1-D array of ints, bools or strings; floats only when whole numbers."""
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be an array of class labels ({exc})") from None
    if y.ndim != 1:
        raise DataError(f"{name} must hold one class label per example, shape (n,); got shape {y.shape}")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{name} holds non-integer or NaN values; class labels must be integers or strings")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iubU":
        raise DataError(f"{name} must hold integers, booleans or strings as class labels, got dtype {y.dtype}")
    return y


class Conditioning:
    """What every conditioning offers; the estimator holds one (``conditioning_``) and names its class.

    Subclasses define each method; this class only declares them, for the estimators and the CLI
    that use a conditioning without knowing which it is.
    """

    conditional: ClassVar[bool]  # whether the module takes a y
    state_keys: ClassVar[tuple[str, ...]]  # fitted attributes it adds to a saved model

    @property
    def n_classes(self) -> int:
        """The number of classes the module is conditioned on (0: none)."""
        raise NotImplementedError

    @classmethod
    def fit(cls, owner: str, y, n: int) -> tuple[Conditioning, np.ndarray | None]:
        """The conditioning fitted to labels ``y`` of ``n`` rows, and their class indices (or None)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, fitted: dict) -> Conditioning:
        """The conditioning a saved model's fitted attributes describe."""
        raise NotImplementedError

    def state(self) -> dict:
        """The fitted attributes it adds to a saved model (``state_keys``)."""
        raise NotImplementedError

    def supervised(self, y):
        """``y`` as ``fit``/``score``/``fit_transform`` pass it on."""
        raise NotImplementedError

    def indices(self, owner: str, y, n: int) -> np.ndarray | None:
        """Class indices ``(n,)`` of labels ``y`` for the module, or None."""
        raise NotImplementedError

    def default_labels(self, n: int) -> np.ndarray | None:
        """Labels for ``n`` samples drawn without any, or None."""
        raise NotImplementedError


class Unconditional(Conditioning):
    """No conditioning: the module takes no ``y``."""

    conditional: ClassVar[bool] = False  # whether the module takes a y
    state_keys: ClassVar[tuple[str, ...]] = ()  # fitted attributes it adds to a saved model
    n_classes = 0

    @classmethod
    def fit(cls, owner: str, y, n: int) -> tuple[Unconditional, None]:
        return cls(), None  # fit ignores y, as scikit-learn's unsupervised estimators do

    @classmethod
    def from_state(cls, fitted: dict) -> Unconditional:
        return cls()

    def state(self) -> dict:
        return {}

    def supervised(self, y) -> None:
        """``y`` as ``fit``/``score``/``fit_transform`` pass it on: ignored, as scikit-learn does."""
        return None

    def indices(self, owner: str, y, n: int) -> None:
        if y is not None:
            raise ConfigError(
                f"{owner} is unconditional and takes no labels y; class labels condition a ConditionalVAE"
            )
        return None

    def default_labels(self, n: int) -> None:
        return None


class ClassLabels(Conditioning):
    """Conditioning on a class label: ``classes_`` (sorted) seen in fit, one-hot into encoder and decoder."""

    conditional: ClassVar[bool] = True
    state_keys: ClassVar[tuple[str, ...]] = ("classes_",)

    def __init__(self, classes: np.ndarray):
        self.classes = np.asarray(classes)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def fit(cls, owner: str, y, n: int) -> tuple[ClassLabels, np.ndarray]:
        if y is None:
            # the second clause is scikit-learn's wording, which its estimator checks look for
            raise DataError(
                f"{owner}.fit needs the class labels y of X, shape (n,); use VAE for unlabelled data "
                f"({owner} requires y to be passed, but the target y is None)"
            )
        y = check_labels(y)
        if len(y) != n:
            raise DataError(f"got {len(y)} labels for {n} examples; pass one label per row of X")
        conditioning = cls(np.unique(y))
        return conditioning, np.searchsorted(conditioning.classes, y).astype(np.int64)

    @classmethod
    def from_state(cls, fitted: dict) -> ClassLabels:
        return cls(np.asarray(fitted["classes_"]))

    def state(self) -> dict:
        return {"classes_": self.classes.tolist()}

    def supervised(self, y):
        return y

    def indices(self, owner: str, y, n: int) -> np.ndarray:
        """Indices into ``classes`` of labels ``y`` ((n,) or one label for all ``n`` rows): ``(n,)`` int64."""
        if y is None:
            raise DataError(f"{owner} needs the class labels y: shape (n,) or one label for all rows")
        y = np.asarray(y)  # first: some array-likes offer __array__ but refuse numpy functions such as np.ndim
        y = check_labels(np.broadcast_to(y, (n,)) if y.ndim == 0 else y)
        if len(y) != n:
            raise DataError(f"got {len(y)} labels for {n} rows; pass one label per row, or a single label")
        if (y.dtype.kind == "U") != (self.classes.dtype.kind == "U"):  # strings never equal numbers
            index, known = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        else:
            index = np.searchsorted(self.classes, y).clip(0, len(self.classes) - 1)
            known = self.classes[index] == y
        if not known.all():
            unknown = np.unique(y[~known])
            raise DataError(
                f"label(s) {unknown[:5].tolist()} were not seen in fit; "
                f"this model knows classes {self.classes.tolist()}"
            )
        return index.astype(np.int64)

    def default_labels(self, n: int) -> np.ndarray:
        """The classes in turn, for ``n`` samples drawn without labels."""
        return np.resize(self.classes, n)
