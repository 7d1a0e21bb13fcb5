"""The words of the report: what each figure shows and what to look for, per kind of model.

Kept apart from the drawing and the HTML so the story can be read (and edited) in one place.
Keys are model kinds: ``"pca"``, ``"autoencoder"``, ``"vae"``, and ``"other"`` for anything else.
"""

from __future__ import annotations

from ._common import STANDARD_NORMAL

INTRO = (
    "Three ways to compress the same data into a low-dimensional code: probabilistic PCA (linear, "
    "exact likelihood), an autoencoder (non-linear, no likelihood of its own) and a variational "
    "autoencoder (non-linear, trained on a lower bound of the likelihood). Two properties separate a "
    "generative latent space from a compressed one. Continuity: nearby codes decode to similar data, "
    "so straight lines between codes decode to smooth interpolations. Completeness: codes drawn from "
    "the prior (N(0, I), unless a VAE is given a learned one) decode to things that look like data. "
    "The VAE is trained for both, the "
    "autoencoder for neither: compare their prior samples."
)


def samples_comparison(table) -> str:
    """The caption of the prior-samples figure, with the precision of each row of the comparison ``table``."""
    measured = [
        f"{row['model']} {row['precision']:.2f}" for row in table if isinstance(row.get("precision"), (int, float))
    ]
    told = (
        " The precision column measures it on draws from p(x|z) (the share that lands near real data): "
        + ", ".join(measured)
        + "."
        if measured
        else ""
    )
    return (
        "First panel: real test images. Then each model's decoder means at codes drawn from its prior "
        "(named above each panel), with the same seed. Only a model trained with a prior on its codes is "
        "built to generate data by sampling that prior; the autoencoder's codes have no prior, so N(0, I) "
        "is a guess at where they lie." + told
    )


RATE_DISTORTION = (
    "Each point is a VAE trained with a different \u03b2. Small \u03b2 buys a high rate (the code "
    "carries more information about each example) and a low distortion (sharper reconstructions); "
    "large \u03b2 the reverse, with codes closer to the prior. \u03b2 = 1 optimises the ELBO; points "
    "on the dashed line have the same ELBO as the best one in the sweep."
)

_LATENT_MAP = {
    "pca": " PCA codes are linear projections scaled so that their prior is N(0, I); classes overlap "
    "where no linear map separates them.",
    "autoencoder": " Nothing ties an autoencoder's codes to N(0, I): compare their spread with the "
    "prior's circles. Wherever the prior puts mass but no data sit, prior samples decode to nonsense.",
    "vae": " A VAE's codes should fill the prior's circles without large holes, so that codes drawn "
    "from the prior land near data (completeness).",
}
_LEARNED_PRIOR_MAP = (
    " This VAE's prior is {prior}: its codes should lie where that prior puts its mass (the circles are "
    "N(0, I)'s, a scale only), so that codes drawn from it land near data (completeness)."
)

_SAMPLES = {
    "pca": "Decoder means at codes drawn from N(0, I). Probabilistic PCA is generative but linear: its "
    "samples are blends of a few principal images, plausible in outline and blurry in detail.",
    "autoencoder": "Decoder means at codes drawn from N(0, I). The autoencoder was never trained to make "
    "such codes decodable, so these are expected to look worse than the VAE's: it compresses, it "
    "does not generate. That gap is the point of the comparison.",
    "vae": "Decoder means at codes drawn from {prior}, the VAE's prior. Completeness: when the prior covers "
    "where the encoder puts the data, these look like (somewhat blurred) data.",
    "other": "Decoder means at codes drawn from {prior}.",
}

_INTERPOLATIONS = {
    "pca": " PCA decodes linearly, so its paths are cross-fades between the two reconstructions.",
    "autoencoder": " An autoencoder's paths may cross regions that no training code occupies.",
}

_TRAVERSALS = {
    "prior": "Row j moves only z_j from -3 to +3 prior standard deviations, the other coordinates at 0. "
    "Rows that change the picture are dimensions in use; a row that stays the same is an inactive "
    "dimension (posterior collapse).",
    "codes": "The autoencoder has no prior scale, so row j moves z_j by up to \u00b13 standard deviations "
    "of its test codes around their mean. Rows that change the picture are dimensions in use.",
}


def latent_map(kind: str, prior: str) -> str:
    """``prior``: the model's prior in words (:func:`vaelab.report._common.prior_name`)."""
    learned = kind == "vae" and prior != STANDARD_NORMAL
    return (
        "Each point is a test example at its code. Look for labels that form compact, separate regions: "
        "the code keeps what distinguishes them."
        + (_LEARNED_PRIOR_MAP.format(prior=prior) if learned else _LATENT_MAP.get(kind, ""))
    )


def reconstructions(kind: str) -> str:
    text = (
        "Upper row of each pair: test images; lower row: the decoder mean at each image's code. This is "
        "what the code keeps. The title's mean squared error is in squared data units per value, as the "
        "table's."
    )
    if kind == "autoencoder":
        text += " The autoencoder often wins here: it spends nothing on making its latent space regular."
    elif kind == "vae":
        text += " The VAE trades some sharpness for a latent space it can sample from."
    return text


def samples(kind: str, prior: str) -> str:
    """``prior``: the prior the samples' codes were drawn from, in words."""
    return _SAMPLES.get(kind, _SAMPLES["other"]).format(prior=prior)


def interpolations(kind: str) -> str:
    return (
        "Each row decodes a straight line between the codes of two test images (the images themselves "
        "at the ends). Continuity: the picture should change gradually and stay plausible along the "
        "way; jumps or garbage midway mean the path crosses regions with no data." + _INTERPOLATIONS.get(kind, "")
    )


def traversals(reference: str) -> str:
    return _TRAVERSALS[reference]


def training_curves(kind: str) -> str:
    text = (
        "Loss terms per epoch in nats per example, on training (solid) and held-out validation (dashed) "
        "data, in the model's space (the preprocessed values, so without the log-Jacobian that the table's "
        "data-unit numbers include). A validation curve that turns up while the training curve still "
        "falls is overfitting; the dotted line marks the epoch whose weights were kept."
    )
    if kind == "autoencoder":
        text += " The autoencoder has no KL term."
    elif kind == "vae":
        text += " The KL term is the rate: how much information the codes carry about each example."
    return text


def feature_errors(kind: str) -> str:
    return (
        "Mean squared reconstruction error of each feature on the test set, in squared data units. A bar "
        "reaching its black tick (the feature's variance) is a feature the code ignores."
    )


def feature_histograms(kind: str) -> str:
    text = (
        "Completeness for tabular data: the prior samples' histogram (a density: per data unit) should "
        "match the data's, feature by feature. The samples are decoder means, without decoder noise, so a "
        "somewhat narrower sample histogram is expected even from a good model."
    )
    if kind == "autoencoder":
        text += " The autoencoder was not trained for this, so mismatches are expected."
    return text
