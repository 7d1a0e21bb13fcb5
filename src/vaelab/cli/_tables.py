"""The terminal's tables: rows of cells padded to their columns, and an evaluation flattened to rows."""

from __future__ import annotations


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[title for _, title in columns]]
    for row in rows:
        cells.append([format_cell(row.get(key)) for key, _ in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def format_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"
    return str(value)


def metric_rows(metrics: dict) -> list[dict]:
    """Flatten an evaluation dict to (metric, value, unit) rows for the terminal."""
    rows = []
    for key in ("log_likelihood", "elbo", "reconstruction", "kl", "bits_per_dim", "mse"):
        entry = metrics[key]
        rows.append(
            {
                "metric": key,
                "value": entry["value"],
                "unit": entry["unit"],
                "detail": entry.get("estimator") or entry.get("definition") or entry.get("reason"),
            }
        )
    active = metrics["active_units"]
    rows.append(
        {
            "metric": "active_units",
            "value": active["value"],
            "unit": f"of {active['of']}",
            "detail": "Cov(E[z|x]) > 0.01",
        }
    )
    path = metrics["continuity"]["path_length_ratio"]
    rows.append(
        {
            "metric": "path_length_ratio",
            "value": path["median"],
            "unit": "median",
            "detail": f"p90 {format_cell(path['p90'])}; 1 = straight",
        }
    )
    lipschitz = metrics["continuity"]["decoder_lipschitz"]
    for where in ("around_data", "around_samples"):
        if lipschitz[where].get("median") is not None:
            rows.append(
                {
                    "metric": f"lipschitz_{where}",
                    "value": lipschitz[where]["median"],
                    "unit": "median",
                    "detail": f"p90 {format_cell(lipschitz[where]['p90'])}",
                }
            )
    completeness = metrics["completeness"]
    for sampler in ("prior", "gmm"):
        entry = completeness.get(sampler) or {}
        for name in ("precision", "recall", "density", "coverage"):
            if entry.get(name) is not None:
                rows.append(
                    {
                        "metric": f"{name}_{sampler}",
                        "value": entry[name],
                        "unit": "",
                        "detail": f"k={completeness['k']}",
                    }
                )
    return rows
