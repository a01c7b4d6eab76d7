"""A horizontal bar chart of the ours/peer ratios (matplotlib, optional extra ``bench``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from .core import Row


def render(rows: Sequence[Row], path: Path, title: str) -> bool:
    """Write ``path`` (PNG); False when matplotlib is not installed or nothing has a ratio."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(f"{r.scenario} {r.label}\nvs {r.peer_label}", r.ratio) for r in rows
            if r.ratio is not None]
    if not data:
        return False
    labels = [d[0] for d in data][::-1]
    ratios = [float(d[1] or 0) for d in data][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(data) + 1.5))
    colors = ["tab:green" if v <= 1 else "tab:red" for v in ratios]
    ax.barh(range(len(ratios)), ratios, color=colors)
    ax.set_yticks(range(len(ratios)), labels, fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("ratio ours / peer (median; < 1 = ours faster)")
    for i, v in enumerate(ratios):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
