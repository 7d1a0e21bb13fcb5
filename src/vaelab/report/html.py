"""One self-contained HTML page comparing fitted models: a table, notes and every figure, with captions.

The page has inline CSS, figures embedded as base64 ``data:`` URIs, no scripts and no network
requests (a Content-Security-Policy forbids them), so it can be mailed or archived as one file. The
same PNGs are written beside it under ``figures/``. All text is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConfigError, DataError
from ..estimators import LatentEstimator
from . import captions, figures, tabular
from ._common import as_rows, prior_name
from ._images import check_sample_shape, display_range
from .curves import check_sweep

FIGURE_DPI = 110  # with figures.FIGURE_WIDTH = 8 in, every PNG is 880 pixels wide

_CSS = """
body{margin:0;background:#f6f6f8;color:#1d1d1f;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:960px;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:1.9rem;margin:0 0 .3rem}h2{margin-top:2.6rem;padding-bottom:.3rem;border-bottom:1px solid #d8d8dd}
.lead{font-size:1.02rem;color:#333}.meta,footer{color:#666;font-size:.9rem}
nav ul{margin:.3rem 0;padding-left:1.2rem;columns:2}
.table-wrap{overflow-x:auto;margin:1rem 0}
table{width:100%;border-collapse:collapse;background:#fff;font-size:.93rem;font-variant-numeric:tabular-nums}
th,td{padding:.45rem .6rem;border-bottom:1px solid #e6e6ea;text-align:left;vertical-align:middle}
thead th{vertical-align:bottom}
thead th{background:#ececf1;font-weight:600}.num{text-align:right}td.num{white-space:nowrap}
.notes li{margin:.2rem 0}
figure{margin:1.4rem 0;padding:.8rem;background:#fff;border:1px solid #e2e2e7;border-radius:6px}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{margin-top:.55rem;font-size:.93rem;color:#3a3a3c}
"""

_NUM = ' class="num"'  # right-aligned table cell
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class _Plot:
    file: str  # PNG name under figures/
    caption: str
    alt: str
    draw: Callable[[], Figure]  # drawn only when written, so one figure is held at a time


@dataclass(frozen=True)
class _Section:
    anchor: str
    heading: str
    text: str
    plots: list[_Plot]


def _kind(model) -> str:
    return model.kind if isinstance(model, LatentEstimator) else "other"  # each estimator class declares its kind


def _slugs(names: Sequence[str]) -> list[str]:
    """File- and anchor-safe, unique slugs of ``names``."""
    seen: set[str] = set()
    out = []
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "model"
        slug, i = base, 2
        while slug in seen:
            slug, i = f"{base}-{i}", i + 1
        seen.add(slug)
        out.append(slug)
    return out


def _describe(model) -> str:
    """One line: class, latent size, likelihood, beta, and how training went."""
    params = model.get_params() if hasattr(model, "get_params") else {}
    parts = [type(model).__name__]
    for key in ("latent_dim", "hidden", "likelihood", "beta"):
        if key in params:
            parts.append(f"{key}={params[key]!r}")
    history = getattr(model, "history_", None)
    if history:
        epochs = len(history["train"]["loss"])
        parts.append(f"trained {epochs} epoch{'s' * (epochs != 1)}, weights of epoch {history['best_epoch']} kept")
    elif _kind(model) == "pca":
        parts.append("fitted in closed form (no training curves)")
    return "; ".join(parts)


def _format(value) -> tuple[str, bool]:
    """A table cell's text and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, Real) and not isinstance(value, bool) and math.isnan(value)):
        return "\u2014", False
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        return str(value), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    value = float(value)
    magnitude = abs(value)
    if value == 0:
        return "0", True
    if not math.isfinite(value):
        return str(value), True
    if 1e-3 <= magnitude < 1e6:  # four significant digits, no exponent
        return f"{value:.{max(0, 3 - math.floor(math.log10(magnitude)))}f}", True
    return f"{value:.3e}", True


def _model_plots(name: str, slug: str, model, X, y, shape, value_range, feature_names, random_state) -> list[_Plot]:
    kind, prior = _kind(model), prior_name(model)
    seed = {"random_state": random_state}
    plots = [
        _Plot(
            f"{slug}_latent_map.png",
            captions.latent_map(kind, prior),
            f"{name}: latent map",
            lambda: figures.latent_map(model, X, y, name=name, **seed),
        )
    ]
    if shape is not None:
        image = {"name": name, "value_range": value_range}
        reference = "codes" if kind == "autoencoder" else "prior"
        plots += [
            _Plot(
                f"{slug}_reconstructions.png",
                captions.reconstructions(kind),
                f"{name}: reconstructions",
                lambda: figures.reconstructions(model, X, shape, **image, **seed),
            ),
            _Plot(
                f"{slug}_samples.png",
                captions.samples(kind, prior),
                f"{name}: prior samples",
                lambda: figures.prior_samples(model, shape, **image, **seed),
            ),
            _Plot(
                f"{slug}_interpolations.png",
                captions.interpolations(kind),
                f"{name}: interpolations",
                lambda: figures.interpolations(model, X, shape, y=y, **image, **seed),
            ),
            _Plot(
                f"{slug}_traversals.png",
                captions.traversals(reference),
                f"{name}: latent traversals",
                lambda: figures.latent_traversals(model, shape, X=X, reference=reference, **image),
            ),
        ]
    else:
        names = {"name": name, "feature_names": feature_names}
        plots += [
            _Plot(
                f"{slug}_feature_errors.png",
                captions.feature_errors(kind),
                f"{name}: error per feature",
                lambda: tabular.feature_errors(model, X, **names),
            ),
            _Plot(
                f"{slug}_feature_histograms.png",
                captions.feature_histograms(kind),
                f"{name}: data and sample histograms",
                lambda: tabular.feature_histograms(model, X, **names, **seed),
            ),
        ]
    if getattr(model, "history_", None):
        plots.append(
            _Plot(
                f"{slug}_training.png",
                captions.training_curves(kind),
                f"{name}: training curves",
                lambda: figures.training_curves(model, name=name),
            )
        )
    return plots


def _render(plot: _Plot, figures_dir: Path) -> str:
    """Draw, write figures/<file> and return the ``<figure>`` element embedding the same bytes."""
    buffer = io.BytesIO()
    plot.draw().savefig(buffer, format="png", dpi=FIGURE_DPI, facecolor="white")
    data = buffer.getvalue()
    (figures_dir / plot.file).write_bytes(data)
    width, height = struct.unpack(">II", data[16:24])  # the PNG header's IHDR chunk
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="{uri}" width="{width}" height="{height}" alt="{html.escape(plot.alt)}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
    )


def _table(table: Sequence[Mapping], columns: Sequence[tuple[str, str]]) -> str:
    # A column is right-aligned when every value present in it is a number.
    present = [[row.get(key) for row in table if _format(row.get(key))[0] != "\u2014"] for key, _ in columns]
    numeric = [bool(values) and all(_format(v)[1] for v in values) for values in present]
    head = "".join(
        f'<th scope="col"{_NUM if num else ""}>{html.escape(str(header))}</th>'
        for (_, header), num in zip(columns, numeric, strict=True)
    )
    rows = []
    for row in table:
        cells = []
        for (key, _), num in zip(columns, numeric, strict=True):
            text = _format(row.get(key))[0]
            cells.append(f"<td{_NUM if num else ''}>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap"><table class="comparison"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _check_inputs(models, X_test, y_test, sample_shape, table, columns, sweep):
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("models must be a non-empty dict {name: fitted estimator}")
    X = np.asarray(X_test)
    rows = as_rows(X, "X_test")
    if not np.isfinite(rows).all():
        raise DataError("X_test contains NaN or infinite values; the models cannot encode them")
    for name, model in models.items():
        fitted = getattr(model, "n_features_in_", None)
        if fitted is None:
            raise DataError(f"model {name!r} is not fitted; fit it before writing the report")
        if fitted != rows.shape[1]:
            raise DataError(f"X_test has {rows.shape[1]} features, but model {name!r} was fitted with {fitted}")
    y = None if y_test is None else np.asarray(y_test)
    if y is not None and y.shape != (len(X),):
        raise DataError(f"y_test must have shape ({len(X)},) to label X_test, got {y.shape}")
    if sample_shape is None and X.ndim == 4:  # an (n, C, H, W) array is images even without sample_shape
        sample_shape = X.shape[1:]
    shape = None if sample_shape is None else check_sample_shape(sample_shape, rows.shape[1])
    columns = [tuple(c) for c in columns]
    if any(len(c) != 2 for c in columns):
        raise ConfigError("columns must be a list of (key, header) pairs")
    if any(not isinstance(row, Mapping) for row in table):
        raise ConfigError("table must be a list of dicts, one per model, keyed by the column keys")
    if sweep:
        check_sweep(sweep)
    return X, rows, y, shape, columns


def write_report(
    out_dir,
    *,
    title: str,
    models: Mapping[str, object],
    X_test: np.ndarray,
    y_test: np.ndarray | None,
    sample_shape: tuple[int, ...] | None,
    table: Sequence[Mapping],
    columns: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
    sweep: Sequence[Mapping[str, float]] | None = None,
    random_state: int = 0,
    feature_names: Sequence[str] | None = None,
    data_description: str | None = None,
) -> Path:
    """Write ``out_dir/report.html`` and its figures as PNGs under ``out_dir/figures/``.

    Parameters
    ----------
    out_dir : path-like
        Created if missing; files of the same names are overwritten.
    title : str
    models : dict of str to fitted estimator
        In display order, e.g. ``{"PCA": pca, "Autoencoder": ae, "VAE": vae}``.
    X_test : array of shape (n_samples, n_features)
        Held-out data in the models' space (scaled as they were trained).
    y_test : array of shape (n_samples,) or None
        Labels to colour the latent maps by and to pick interpolation pairs with.
    sample_shape : (channels, height, width) or None
        The shape of one image, or None for tabular data (then feature plots replace image grids).
    table : list of dict
        One row per model, e.g. ``{"model": "VAE", "mse": 0.01, "log_likelihood": -40.2}``.
    columns : list of (key, header)
        The table's columns: the key in each row and the header shown. Missing values show as a dash.
    notes : list of str
        Shown under the table: units, which log-likelihoods are comparable, the protocol.
    sweep : list of dict, optional
        ``{"beta", "rate", "distortion"}`` per point (nats per example) for a rate-distortion figure.
    random_state : int
        Seeds every random choice (images shown, pairs, prior samples), so reruns give the same page.
    feature_names : list of str, optional
        Names of tabular features for the feature plots.
    data_description : str, optional
        What the data are, as loaded, for the line under the title (e.g. ``Dataset.describe()``:
        "8x8 grey images, uint8 values 0..16"); default: the image shape or "tabular data".

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    X, rows, y, shape, columns = _check_inputs(models, X_test, y_test, sample_shape, table, columns, sweep)
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    value_range = display_range(rows)
    sections = []
    if shape is not None:
        plot = _Plot(
            "samples_comparison.png",
            captions.samples_comparison(table),
            "prior samples of every model beside test images",
            lambda: figures.samples_comparison(models, shape, X, value_range=value_range, random_state=random_state),
        )
        sections.append(_Section("samples", "Prior samples side by side", "", [plot]))
    if sweep:
        plot = _Plot(
            "rate_distortion.png",
            captions.RATE_DISTORTION,
            "rate-distortion curve",
            lambda: figures.rate_distortion(sweep),
        )
        sections.append(_Section("rate-distortion", "Rate and distortion", "", [plot]))
    for (name, model), slug in zip(models.items(), _slugs(list(models)), strict=True):
        plots = _model_plots(str(name), slug, model, X, y, shape, value_range, feature_names, random_state)
        sections.append(_Section(f"model-{slug}", str(name), _describe(model), plots))

    if data_description is None:
        data_description = f"{shape[1]}x{shape[2]} images, {shape[0]} channel(s)" if shape else "tabular data"
    esc = html.escape
    contents = "".join(f'<li><a href="#{s.anchor}">{esc(s.heading)}</a></li>' for s in sections)
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{len(X):,} test examples with {rows.shape[1]:,} features; {esc(data_description)}.</p>',
        f'<p class="lead">{esc(captions.INTRO)}</p>',
        f'<nav><ul><li><a href="#comparison">Comparison</a></li>{contents}</ul></nav>',
        '<h2 id="comparison">Comparison</h2>',
        _table(table, columns),
    ]
    if notes:
        body.append('<ul class="notes">' + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    for section in sections:
        body.append(f'<section id="{section.anchor}"><h2>{esc(section.heading)}</h2>')
        if section.text:
            body.append(f'<p class="meta">{esc(section.text)}</p>')
        body.extend(_render(plot, figures_dir) for plot in section.plots)
        body.append("</section>")
    from .. import __version__

    body.append(
        f"<footer>Written by vaelab {esc(__version__)}. The figures are embedded; PNG copies are in figures/.</footer>"
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{_CSS}</style></head>\n'
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
