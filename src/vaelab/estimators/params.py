"""Every estimator parameter, declared once: name, default, check, documentation, CLI flag.

Each estimator has a :class:`ParamTable`. From it come its validation (one loop, :meth:`ParamTable.validate`),
the numpydoc Parameters section of its docstring, the training knobs handed to
:class:`vaelab.train.TrainConfig` (whose fields declare their defaults) and the ``vaelab`` CLI flags.
The estimators keep explicit keyword-only ``__init__`` signatures, as scikit-learn needs; a test
checks each against its table. Adding a knob is one row here and one line in a signature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..data.preprocessing import BINARIZE, CHOICES, DEQUANTIZE
from ..errors import ConfigError
from ..likelihoods import LIKELIHOODS
from ..models import ARCHITECTURES, OBJECTIVES, PRIORS
from ..runtime import seed_from
from ..train import PRECISIONS, TrainConfig
from .checks import check_choice, check_int, check_real, check_sizes, optional


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"256,128"`` -> ``(256, 128)``."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers like 256,128, got {text!r}") from None


def _parse_or_none(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse_or_none(text: str):
        if text.lower() == "none":
            return None
        try:
            return parse(text)
        except ValueError:
            raise ValueError(f"expected {what} or 'none', got {text!r}") from None

    return parse_or_none


parse_optional_int = _parse_or_none(int, "an integer")
parse_optional_float = _parse_or_none(float, "a number")


@dataclass(frozen=True)
class Param:
    """One estimator parameter.

    ``check(name, value)`` raises a ConfigError for a bad value (None: checked where it is used,
    e.g. ``device`` against the hardware at fit time). ``flag`` parses the CLI flag's text (None:
    no flag). ``train``: the parameter is a field of :class:`vaelab.train.TrainConfig` of the same
    name, handed to the trainer as it is.
    """

    name: str
    default: Any
    kind: str  # numpydoc type line, e.g. "int" or '{"elbo", "iwae"}'
    doc: str  # numpydoc description, one paragraph
    check: Callable[[str, Any], Any] | None = None
    flag: Callable[[str], Any] | None = str
    train: bool = False


@dataclass(frozen=True)
class ParamTable:
    """The parameters of one estimator, in signature order, and the rules that relate them."""

    params: tuple[Param, ...]
    rules: tuple[Callable[[Mapping[str, Any]], None], ...] = ()

    def __iter__(self):
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def validate(self, values: Mapping[str, Any]) -> None:
        """Raise a ConfigError for the first bad value of ``values`` (name -> value), then check the rules."""
        for p in self.params:
            if p.check is not None:
                p.check(p.name, values[p.name])
        for rule in self.rules:
            rule(values)

    def train_knobs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The :class:`TrainConfig` fields among ``values``."""
        return {p.name: values[p.name] for p in self.params if p.train}

    def from_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters read back from JSON: lists become tuples where the default is a tuple."""
        names = set(self.names)
        return {
            k: tuple(v) if k in names and isinstance(self[k].default, tuple) and isinstance(v, list) else v
            for k, v in values.items()
        }

    def docstring(self, summary: str) -> str:
        """``summary`` followed by the numpydoc Parameters section of this table."""
        lines = [summary.rstrip(), "", "    Parameters", "    ----------"]
        for p in self.params:
            lines += [f"    {p.name} : {p.kind}", f"        {p.doc}"]
        return "\n".join(lines) + "\n"

    def extended(self, *params: Param, after: str, rules=()) -> ParamTable:
        """This table with ``params`` inserted after the row ``after``, and ``rules`` added."""
        at = self.names.index(after) + 1
        return ParamTable(self.params[:at] + params + self.params[at:], self.rules + tuple(rules))


_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _knob(name: str, kind: str, doc: str, check, flag) -> Param:
    """A training knob: its default is TrainConfig's, where the trainer declares it."""
    return Param(name, _TRAIN_DEFAULTS[name], kind, doc, check, flag, train=True)


def _positive_int(name, value):
    return check_int(name, value, 1)


def _positive(name, value):
    return check_real(name, value)


def _verbosity(name, value):
    if not isinstance(value, bool):  # verbose=True is the usual scikit-learn spelling of 1
        check_int(name, value, 0)


def _seed(name, value):
    seed_from(value)  # None, an int in [0, 2**32) or a RandomState; says so otherwise


LATENT_DIM = Param(
    "latent_dim", 2, "int", "Size of the code (PCA: the number of principal components kept).", _positive_int, int
)
HIDDEN = Param(
    "hidden",
    (256, 128),
    "tuple of int",
    "MLP hidden layer sizes of the encoder (the decoder mirrors them); ``()`` gives linear maps.",
    check_sizes,
    parse_sizes,
)
ARCHITECTURE = Param(
    "architecture",
    "auto",
    '{"auto", ' + ", ".join(f'"{a}"' for a in ARCHITECTURES) + "}",
    '``"auto"``: an MLP, for tables and images alike (on a CPU about 10x faster per epoch than the CNN); '
    '``"conv"``: a CNN for images (n, C, H, W); ``"gated_mlp"``: '
    "hidden layers h = (W x + b) * sigmoid(V x + c), as in the VampPrior experiments.",
    lambda n, v: check_choice(n, v, ("auto", *ARCHITECTURES)),
)
CHANNELS = Param(
    "channels",
    (32, 64),
    "tuple of int",
    "Conv channels of the encoder's stride-2 layers (the decoder mirrors them).",
    check_sizes,
    parse_sizes,
)
LIKELIHOOD = Param(
    "likelihood",
    "auto",
    '{"auto", ' + ", ".join(f'"{n}"' for n in LIKELIHOODS) + "}",
    "Decoder distribution p(x|z); its negative log-likelihood (nats) is the reconstruction term. "
    '``"auto"``: ``"bernoulli"`` for binarised data, else ``"gaussian"`` (a learned variance per '
    "feature: a density of the same values as PCA's, so the models compare like for like).",
    lambda n, v: check_choice(n, v, ("auto", *LIKELIHOODS)),
)
BETA = Param("beta", 1.0, "float", "Weight of the KL term (1: the ELBO; Higgins et al., 2017).", _positive, float)
OBJECTIVE = Param(
    "objective",
    "elbo",
    '{"elbo", "iwae"}',
    "The ELBO, or the importance-weighted bound with ``n_train_samples`` samples (Burda et al., 2016).",
    lambda n, v: check_choice(n, v, OBJECTIVES),
)
N_TRAIN_SAMPLES = Param(
    "n_train_samples", 1, "int", "Samples per example of the IWAE bound during training.", _positive_int, int
)
KL_WARMUP = Param(
    "kl_warmup",
    0,
    "int",
    "Anneal the KL weight linearly from 0 to ``beta`` over this many epochs (0: off).",
    lambda n, v: check_int(n, v, 0),
    int,
)
PRIOR = Param(
    "prior",
    "normal",
    "{" + ", ".join(f'"{k}"' for k in PRIORS) + "}",
    'p(z): ``"normal"`` N(0, I); ``"vamp"`` the VampPrior (Tomczak & Welling, 2018), a mixture of the '
    'posteriors at ``prior_components`` learned pseudo-inputs; ``"mixture"`` a learned mixture of '
    "``prior_components`` Gaussians.",
    lambda n, v: check_choice(n, v, tuple(PRIORS)),
)
PRIOR_COMPONENTS = Param(
    "prior_components",
    500,
    "int",
    'Pseudo-inputs of ``prior="vamp"`` or components of ``prior="mixture"`` (unused by "normal").',
    _positive_int,
    int,
)
TOP_LATENT_DIM = Param(
    "top_latent_dim",
    0,
    "int",
    "Size of a second, top stochastic layer z2 above the code z1 (0: one layer). With > 0 the model is "
    "the two-level VAE of Tomczak & Welling (2018), q(z2|x) q(z1|x, z2) and p(z2) p(z1|z2) p(x|z1, z2), "
    "``prior`` is over z2, and codes are (z1, z2): ``latent_dim + top_latent_dim`` columns. MLP "
    'architectures only (``architecture="auto"`` picks the MLP, for images too).',
    lambda n, v: check_int(n, v, 0),
    int,
)
FREE_BITS = Param(
    "free_bits",
    0.0,
    "float",
    "Floor, in nats, of the batch-mean KL of each latent dimension (0: off; at most 100).",
    # Useful floors are a few nats (the free bits of Kingma et al., 2016); 100 nats is 144 bits of
    # every dimension, and a larger floor would overflow the float32 loss instead of being refused.
    lambda n, v: check_real(n, v, 0.0, 100.0, low_open=False, high_open=False, unit="nats per latent dimension"),
    float,
)
PREPROCESSING = Param(
    "preprocessing",
    "auto",
    "{" + ", ".join(f'"{k}"' for k in CHOICES) + "}",
    "Map from raw values to model space, fitted on the training data and stored with the model. "
    '``"auto"``: ``"scale"`` (to [0, 1]) for images and 8-bit data of a known range, '
    '``"standardize"`` for tables. Log-likelihoods are reported in the raw data\'s units.',
    lambda n, v: check_choice(n, v, CHOICES),
)
PIXEL_MAX = Param(
    "pixel_max",
    None,
    "float or None",
    'For ``preprocessing="scale"``: the raw full-scale value (255 for uint8 when None).',
    optional(_positive),
    parse_optional_float,
)
BINARIZE_ = Param(
    "binarize",
    "none",
    "{" + ", ".join(f'"{k}"' for k in BINARIZE) + "}",
    "After scaling: binarise at 0.5, by one fixed Bernoulli draw, or by a fresh draw of every batch "
    "(the usual protocol for likelihood benchmarks).",
    lambda n, v: check_choice(n, v, BINARIZE),
)
DEQUANTIZE_ = Param(
    "dequantize",
    "auto",
    "{" + ", ".join(f'"{k}"' for k in DEQUANTIZE) + "}",
    "Integer grey levels 0..pixel_max as bins of width 1: trained on a uniform point in each bin, "
    "scored as the probability of the integers (a lower bound, in nats; the 8-bit bits/dim convention). "
    '``"auto"``: for scaled integer data with pixel_max >= 2 and no binarisation (images of grey levels), '
    "so that no density can win by peaking on the integers.",
    lambda n, v: check_choice(n, v, DEQUANTIZE),
)
EPOCHS = _knob(
    "epochs",
    "int or None",
    "Passes over the training data, an upper bound with early stopping (None: "
    "at least 10, and enough for 5,000 Adam steps, so that small data sets converge too).",
    optional(_positive_int),
    parse_optional_int,
)
BATCH_SIZE = _knob("batch_size", "int", "Examples per gradient step.", _positive_int, int)
LR = _knob("lr", "float", "Adam learning rate.", _positive, float)
VALIDATION_FRACTION = Param(
    "validation_fraction",
    0.1,
    "float",
    "Share of the data held out for early stopping (0 disables it).",
    lambda n, v: check_real(n, v, 0.0, 1.0, low_open=False),
    float,
)
PATIENCE = _knob(
    "patience",
    "int or None",
    "Epochs without improvement of the validation loss before stopping (None: never stop early).",
    optional(_positive_int),
    parse_optional_int,
)
GRAD_CLIP = _knob(
    "grad_clip",
    "float or None",
    "Clip the global gradient norm to this value (None: no clipping).",
    optional(_positive),
    parse_optional_float,
)
PRECISION = _knob(
    "precision",
    '{"float32", "bfloat16"}',
    '``"bfloat16"``: mixed precision, forward and backward passes under ``torch.autocast`` (fast on GPUs '
    "with bfloat16 units; usually slower on CPUs without them). Weights, Adam and every method after "
    "fit stay float32.",
    lambda n, v: check_choice(n, v, PRECISIONS),
    str,
)
DEVICE = Param(
    "device",
    "auto",
    "str",
    '``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``; checked against the hardware at fit time.',
)
RANDOM_STATE = Param(
    "random_state",
    None,
    "int, RandomState or None",
    "Same seed, same machine: same weights.",
    _seed,
    parse_optional_int,
)
VERBOSE = Param("verbose", 0, "int or bool", "0 is silent; 1 shows a progress bar.", _verbosity, None)


def _iwae_rules(values: Mapping[str, Any]) -> None:
    if values["objective"] == "elbo" and values["n_train_samples"] != 1:
        raise ConfigError(
            f"n_train_samples={values['n_train_samples']!r} > 1 needs objective='iwae' (the ELBO uses one sample)"
        )
    if values["objective"] == "iwae" and (values["beta"] != 1 or values["free_bits"] or values["kl_warmup"]):
        raise ConfigError(
            "objective='iwae' is the plain importance-weighted bound: use beta=1, free_bits=0, kl_warmup=0 "
            f"(got beta={values['beta']!r}, free_bits={values['free_bits']!r}, kl_warmup={values['kl_warmup']!r})"
        )


def _prior_rules(values: Mapping[str, Any]) -> None:
    if values["free_bits"] and values["prior"] != "normal":
        raise ConfigError(
            f"free_bits floors a per-dimension KL, which prior={values['prior']!r} does not have; use prior='normal'"
        )
    if values["free_bits"] and values["top_latent_dim"]:
        raise ConfigError(
            "free_bits floors a per-dimension KL, which a two-level VAE does not have; use top_latent_dim=0"
        )
    if values["top_latent_dim"] and values["architecture"] == "conv":
        raise ConfigError("top_latent_dim > 0 (a two-level VAE) needs architecture='mlp' or 'gated_mlp', not 'conv'")


PCA_PARAMS = ParamTable(
    (
        LATENT_DIM,
        PREPROCESSING,
        PIXEL_MAX,
        DEQUANTIZE_,
        dataclasses.replace(RANDOM_STATE, doc="Seeds :meth:`sample` when it is not given its own ``random_state``."),
    )
)
AUTOENCODER_PARAMS = ParamTable(
    (
        LATENT_DIM,
        HIDDEN,
        ARCHITECTURE,
        CHANNELS,
        LIKELIHOOD,
        PREPROCESSING,
        PIXEL_MAX,
        BINARIZE_,
        DEQUANTIZE_,
        EPOCHS,
        BATCH_SIZE,
        LR,
        VALIDATION_FRACTION,
        PATIENCE,
        GRAD_CLIP,
        PRECISION,
        DEVICE,
        RANDOM_STATE,
        VERBOSE,
    )
)
VAE_PARAMS = AUTOENCODER_PARAMS.extended(
    BETA,
    OBJECTIVE,
    N_TRAIN_SAMPLES,
    KL_WARMUP,
    FREE_BITS,
    PRIOR,
    PRIOR_COMPONENTS,
    TOP_LATENT_DIM,
    after="likelihood",
    rules=(_iwae_rules, _prior_rules),
)
