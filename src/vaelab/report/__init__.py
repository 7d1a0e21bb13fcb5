"""The report layer: figures comparing fitted models, and one self-contained HTML page.

The only part of vaelab that imports matplotlib. Figures are returned as
:class:`matplotlib.figure.Figure` objects (:mod:`vaelab.report.figures`,
:mod:`vaelab.report.tabular`) and never shown; :func:`write_report` saves them as PNGs and embeds
them in ``report.html``.
"""

from __future__ import annotations

from .html import write_report

__all__ = ["write_report"]
