"""Bar chart of the zoo: parameters and MACs per model, on log scales."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnlab.viz.common import plt, save_figure
from cnnlab.zoo import ZooRow


def plot_compare(rows: Sequence[ZooRow], path: str | Path) -> Path:
    """Two horizontal bar panels (parameters, MACs per instance), one bar per model, coloured by family."""
    families = list(dict.fromkeys(r.family for r in rows))
    cmap = plt.get_cmap("tab10")
    colour = {f: cmap(i % 10) for i, f in enumerate(families)}
    height = max(3.0, 0.28 * len(rows) + 1.2)
    fig, (ax_p, ax_m) = plt.subplots(1, 2, figsize=(12, height), sharey=True)
    y = list(range(len(rows)))[::-1]
    labels = [r.name for r in rows]
    for ax, values, title, unit in ((ax_p, [r.params / 1e6 for r in rows], "parameters", "millions"),
                                    (ax_m, [r.macs / 1e9 for r in rows], "MACs per instance", "G")):
        ax.barh(y, values, color=[colour[r.family] for r in rows])
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel(f"{title} ({unit}, log scale)")
        ax.grid(axis="x", which="both", alpha=0.3)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:,.3g}", va="center", fontsize=7)
        ax.set_xlim(min(values) / 2, max(values) * 6)
    ax_p.set_yticks(y, labels, fontsize=8)
    shapes = {r.input_shape for r in rows}
    inputs = "input " + "×".join(map(str, rows[0].input_shape)) if len(shapes) == 1 else "each model at its paper's input"
    fig.suptitle(f"cnnlab zoo — {inputs}; MACs: multiply-accumulates, FLOPs = 2 × MACs")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[f]) for f in families]
    fig.legend(handles, families, loc="lower center", ncol=min(len(families), 9), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, path)
