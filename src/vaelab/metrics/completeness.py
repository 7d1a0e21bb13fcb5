"""Completeness of a generative model: do its samples cover the data, and only the data?

Both pairs of metrics compare a set of real and a set of generated ("fake") feature vectors
through k-nearest-neighbour balls, each real point ``x_i`` having radius ``r_i`` = the distance to
its k-th nearest other real point:

* precision and recall — Kynkäänniemi, Karras, Laine, Lehtinen & Aila (2019), "Improved Precision
  and Recall Metric for Assessing Generative Models", NeurIPS. Precision: share of fake points
  inside the union of real balls (fidelity); recall: share of real points inside the union of fake
  balls (radii from the fake set; diversity).
* density and coverage — Naeem, Oh, Uh, Choi & Yoo (2020), "Reliable Fidelity and Diversity
  Metrics for Generative Models", ICML. Density: mean number of real balls holding a fake point,
  over k (about 1 when the two sets share a distribution, robust to real outliers); coverage: share
  of real balls that hold at least one fake point.

Membership is strict (``distance < radius``), as in the authors' reference code. Distances are
Euclidean in a fixed :class:`FeatureSpace`: a PCA fitted once on training data, so that every
model is judged in the same space. :func:`prior_sample_quality` decodes samples of a model and
scores them against held-out data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.decomposition import PCA

from ..errors import ConfigError, DataError
from ..models import LatentModel, fit_code_mixture
from ._common import as_data, check_int, check_seed, embed

_CHUNK_SIZE = 1024  # rows per distance block: a block holds chunk_size * n_other float64 distances
_MAX_COMPONENTS = 64


@dataclass(frozen=True)
class Completeness:
    """Precision, recall, density and coverage of one fake set against one real set (all unitless)."""

    precision: float  # in [0, 1]; fidelity
    recall: float  # in [0, 1]; diversity
    density: float  # >= 0, about 1 for matching distributions; fidelity robust to outliers
    coverage: float  # in [0, 1]; diversity robust to outliers
    k: int  # neighbours defining the ball radii
    n_real: int
    n_fake: int

    def to_dict(self) -> dict:
        return asdict(self)


def _features(a, name: str) -> torch.Tensor:
    a = a.detach().cpu().double() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float64))
    if a.ndim != 2 or len(a) == 0:
        raise DataError(f"{name} must be 2-D (n_samples, n_features) and non-empty, got shape {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return a


def _kth_neighbour_distance(points: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest *other* point: (n, d) -> (n,)."""
    out = []
    for i in range(0, len(points), chunk_size):
        distances = torch.cdist(points[i : i + chunk_size], points)  # (c, n), includes the point itself
        out.append(torch.kthvalue(distances, k + 1, dim=1).values)
    return torch.cat(out)


def prdc(real, fake, k: int = 5, *, chunk_size: int = _CHUNK_SIZE) -> Completeness:
    """Precision, recall, density and coverage in one pass over the distances.

    Parameters
    ----------
    real : array or tensor, shape (n_real, n_dims)
        Features of real (held-out) data.
    fake : array or tensor, shape (n_fake, n_dims)
        Features of generated data, in the same space.
    k : int
        Neighbours for the ball radii (5 in both papers); needs ``k < n_real`` and ``k < n_fake``.
    chunk_size : int
        Rows per distance block (memory ``chunk_size * max(n_real, n_fake)`` float64).
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    k, chunk_size = check_int("k", k, 1), check_int("chunk_size", chunk_size, 1)
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real has {real.shape[1]} features but fake has {fake.shape[1]}; use one feature space")
    if k >= min(len(real), len(fake)):
        raise DataError(f"k={k} needs more than k points in each set, got {len(real)} real and {len(fake)} fake")
    real_radius = _kth_neighbour_distance(real, k, chunk_size)  # (n_real,)
    fake_radius = _kth_neighbour_distance(fake, k, chunk_size)  # (n_fake,)
    in_real_manifold = in_real_balls = 0
    nearest_fake = torch.full((len(real),), torch.inf, dtype=torch.float64)  # (n_real,)
    for i in range(0, len(fake), chunk_size):
        distances = torch.cdist(fake[i : i + chunk_size], real)  # (c, n_real)
        inside = distances < real_radius
        in_real_manifold += int(inside.any(1).sum())
        in_real_balls += int(inside.sum())
        nearest_fake = torch.minimum(nearest_fake, distances.amin(0))
    in_fake_manifold = 0
    for i in range(0, len(real), chunk_size):
        distances = torch.cdist(real[i : i + chunk_size], fake)  # (c, n_fake)
        in_fake_manifold += int((distances < fake_radius).any(1).sum())
    return Completeness(
        precision=in_real_manifold / len(fake),
        recall=in_fake_manifold / len(real),
        density=in_real_balls / (k * len(fake)),
        coverage=float((nearest_fake < real_radius).double().mean()),
        k=k,
        n_real=len(real),
        n_fake=len(fake),
    )


def precision_recall(real, fake, k: int = 5, *, chunk_size: int = _CHUNK_SIZE) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019): ``(precision, recall)`` in [0, 1].

    ``real`` (n_real, n_dims) and ``fake`` (n_fake, n_dims) are features in one space; see
    :func:`prdc` for the parameters.
    """
    result = prdc(real, fake, k, chunk_size=chunk_size)
    return result.precision, result.recall


def density_coverage(real, fake, k: int = 5, *, chunk_size: int = _CHUNK_SIZE) -> tuple[float, float]:
    """Density (>= 0, about 1 for matching sets) and coverage (in [0, 1]) of Naeem et al. (2020).

    ``real`` (n_real, n_dims) and ``fake`` (n_fake, n_dims) are features in one space; see
    :func:`prdc` for the parameters.
    """
    result = prdc(real, fake, k, chunk_size=chunk_size)
    return result.density, result.coverage


# Principal components of the feature space a comparison measures completeness in. Samples are
# draws from p(x|z), whose independent per-feature noise fills every direction of the raw space and
# makes every model's precision ~0 there; in the leading components it averages out, while real
# held-out data still score >= 0.96 on all four numbers there (digits: the calibration row).
COMPARISON_COMPONENTS = 5


@dataclass(frozen=True)
class FeatureSpace:
    """A fixed Euclidean feature space for completeness metrics: PCA fitted on training data.

    Build it with :meth:`fit`; the fitted scikit-learn PCA is kept in ``pca``.
    """

    pca: PCA

    @classmethod
    def fit(cls, x_train, n_components: int | None = None) -> FeatureSpace:
        """Fit on ``x_train`` (n, n_features); ``n_components`` defaults to ``min(64, n, n_features)``."""
        x_train = _features(x_train, "x_train").numpy()
        limit = min(x_train.shape)
        if n_components is None:
            n_components = min(_MAX_COMPONENTS, limit)
        n_components = check_int("n_components", n_components, 1)
        if n_components > limit:
            raise ConfigError(f"n_components must be <= min(n_samples, n_features) = {limit}, got {n_components}")
        # full SVD: deterministic, no random_state to thread through
        return cls(PCA(n_components=n_components, svd_solver="full").fit(x_train))

    @property
    def n_components(self) -> int:
        return int(self.pca.n_components_)

    def transform(self, x) -> np.ndarray:
        """Features of ``x``: (n, n_features) -> (n, n_components), float64."""
        return self.pca.transform(_features(x, "x").numpy())

    def to_dict(self) -> dict:
        """A JSON-serialisable description: kind, dimensions and the variance the features keep."""
        return {
            "kind": "pca",
            "n_components": self.n_components,
            "n_features": int(self.pca.n_features_in_),
            "explained_variance_ratio": float(self.pca.explained_variance_ratio_.sum()),
        }


Sampler = Literal["prior", "gmm"]
SAMPLERS: tuple[Sampler, ...] = ("prior", "gmm")


@torch.no_grad()
def sample_codes(
    model: LatentModel,
    n_samples: int,
    seed: int = 0,
    sampler: Sampler = "prior",
    *,
    x_train=None,
    batch_size: int = _CHUNK_SIZE,
) -> torch.Tensor:
    """Draw codes ``(n_samples, latent_dim)`` from the prior or from the aggregate-posterior sampler.

    ``"prior"`` samples ``model.prior()``. ``"gmm"`` samples the Gaussian mixture of the model's
    kept training codes (:meth:`~vaelab.models.LatentModel.code_mixture`), or, for a model that
    keeps none, a mixture fitted here to ``embed(x_train)``: the fair sampler for a deterministic
    autoencoder, whose codes follow no prior (Ghosh et al., 2020, "From Variational to
    Deterministic Autoencoders", ICLR, use the same ex-post density estimate).
    """
    n_samples, seed = check_int("n_samples", n_samples, 1), check_seed(seed)
    if sampler == "prior":
        distribution = model.prior()
    elif sampler == "gmm":
        if int(model.code_sample_size) > 0:
            distribution = model.code_mixture()
        elif x_train is not None:
            distribution = fit_code_mixture(embed(model, as_data(model, x_train, "x_train", min_rows=2), batch_size))
        else:
            raise ConfigError(
                "sampler='gmm' needs a fitted model's kept codes or x_train, the data to fit the mixture to"
            )
    else:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return distribution.sample((n_samples,)).float()


def calibration(x_reference, x_test, feature_space: FeatureSpace, k: int = 5) -> Completeness:
    """What a perfect generator scores: real rows ``x_reference`` taken as its samples, against ``x_test``.

    Rows neither of the compared sets holds twice (e.g. training rows against test rows) give the
    precision, recall, density and coverage that samples from the data distribution itself get
    in ``feature_space`` with ``k`` neighbours: the top of the scale for a model's numbers.
    """
    real = feature_space.transform(torch.as_tensor(x_test).cpu())
    fake = feature_space.transform(torch.as_tensor(x_reference).cpu())
    return prdc(real, fake, k)


@torch.no_grad()
def prior_sample_quality(
    model: LatentModel,
    x_test,
    feature_space: FeatureSpace,
    n_samples: int | None = None,
    seed: int = 0,
    sampler: Sampler = "prior",
    *,
    x_train=None,
    k: int = 5,
    batch_size: int = _CHUNK_SIZE,
) -> Completeness:
    """Completeness of the model's samples against held-out data, in ``feature_space``.

    The samples are draws from p(x|z) at sampled codes z, the model's own generative distribution,
    not decoder means: the means of a low-dimensional code lie on a low-dimensional surface that
    real data, which vary in every direction, never come near (recall ~0 for every model, the
    data's own included). The draw is seeded by ``seed`` too.

    Parameters
    ----------
    model : LatentModel
        Needs ``decode`` and, per sampler, ``prior`` or ``embed``.
    x_test : tensor or array, shape (n_test, n_features)
        Held-out real data.
    feature_space : FeatureSpace
        Fitted on training data; shared by every model compared.
    n_samples : int, optional
        Generated points; defaults to ``n_test`` (the papers use equal sizes).
    seed : int
        Seeds the sampler.
    sampler : {"prior", "gmm"}
        See :func:`sample_codes`.
    k : int
        Neighbours for the ball radii.

    Returns
    -------
    Completeness
    """
    x_test = as_data(model, x_test, "x_test")
    n_samples = len(x_test) if n_samples is None else n_samples
    z = sample_codes(model, n_samples, seed, sampler, x_train=x_train, batch_size=batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        drawn = torch.cat([model.decode(z[i : i + batch_size]).sample() for i in range(0, len(z), batch_size)])
    fake = feature_space.transform(drawn.float().cpu())
    real = feature_space.transform(x_test.cpu())
    return prdc(real, fake, k)
