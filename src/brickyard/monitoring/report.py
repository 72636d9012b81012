"""A window's report for people: `report.html` (the summary, performance and every
feature's statistics, drifted rows marked) and `drift.png` (each feature's deciding
statistic against its threshold, drifted features in red), written into a folder that the
monitor logs as MLflow artifacts (`windows/<window>/`)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATASET = "__dataset__"
PERFORMANCE = "__performance__"


def write_report(
    folder: Path, *, monitor: str, window: str, model: str, summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[Path]:
    """Write report.html and drift.png for one window into `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "drift.png"
    _plot(png, f"{monitor}: {window}", [row for row in rows if row.get("decisive")])
    page = folder / "report.html"
    page.write_text(_html(monitor, window, model, summary, rows), encoding="utf-8")
    return [page, png]


def _plot(path: Path, title: str, decisive: Sequence[Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{row['feature']} ({row['method']})" for row in decisive]
    ratios = [_ratio(row) for row in decisive]
    colors = ["#c0392b" if row["drifted"] else "#2e86c1" for row in decisive]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.4 * len(labels) + 1)), constrained_layout=True)
    ax.barh(labels or ["(no features tested)"], ratios or [0.0], color=colors or ["#999999"])
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.invert_yaxis()
    ax.set_xlabel("statistic / threshold (p-value tests: threshold / p-value); > 1 is drift")
    ax.set_title(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _ratio(row: Mapping[str, Any]) -> float:
    """How far a statistic is past its threshold, as one scale for every method."""
    threshold, value = row.get("threshold"), row.get("p_value") if row.get("p_value") is not None else row.get("statistic")
    if threshold is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    if row.get("p_value") is not None:  # small p-values are drift
        return min(float(threshold) / max(float(value), 1e-12), 10.0)
    return min(float(value) / float(threshold), 10.0) if threshold else (10.0 if value else 0.0)


def _html(monitor: str, window: str, model: str, summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return html.escape("" if value is None else str(value))

    head = "".join(f"<tr><th>{cell(k)}</th><td>{cell(v)}</td></tr>" for k, v in summary.items())
    columns = ["feature", "kind", "method", "statistic", "p_value", "threshold", "drifted", "estimated", "reference", "note"]
    body = "".join(
        "<tr class='{}'>{}</tr>".format(
            "drifted" if row.get("drifted") else "", "".join(f"<td>{cell(row.get(c))}</td>" for c in columns)
        )
        for row in rows
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{cell(monitor)} {cell(window)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} tr.drifted td{{background:#f8d7da}}</style></head>
<body><h1>Monitor {cell(monitor)}: window {cell(window)}</h1><p>Model {cell(model)}.
Rows marked red drifted (or, for performance, dropped past the threshold); `estimated` metrics
come from the model's scores, not from labels.</p>
<table>{head}</table><h2>Statistics</h2><img src="drift.png" alt="drift per feature">
<table><tr>{''.join(f'<th>{c}</th>' for c in columns)}</tr>{body}</table></body></html>
"""
