"""Pictures of unit discovery (PNG, matplotlib Agg): training curves, codebook usage, phone x codeword maps."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from dinosr_espnet.analysis.train_log import TrainingCurves, finite  # noqa: E402

# Curves worth a panel, in this order; "lr" matches ESPnet's optim0_lr0 etc., "active_codewords" also
# draws each target layer's active_codewords_<k>.
CURVE_METRICS = ("loss", "target_ppl", "pred_ppl", "active_codewords", "reseeded_codewords", "ema_decay", "lr")
_LAYER_SUFFIX = re.compile(r"^_\d+$")


def _metric_columns(curves: TrainingCurves, metric: str) -> List[str]:
    names = curves.metric_names()
    if metric == "lr":
        return [name for name in names if name == "lr" or (name.startswith("optim") and "_lr" in name)]
    if metric == "active_codewords":
        layers = [name for name in names if name.startswith(metric) and _LAYER_SUFFIX.match(name[len(metric):])]
        return [name for name in names if name == metric] + sorted(layers, key=lambda name: int(name.rsplit("_", 1)[1]))
    return [name for name in names if name == metric]


def plot_training_curves(curves: TrainingCurves, output_path: str | Path,
                         metrics: Sequence[str] = CURVE_METRICS) -> Optional[Path]:
    """One panel per metric present: per-interval training values against batch, epoch summaries as markers.

    Returns the PNG path, or None when the log holds none of ``metrics``.
    """
    panels = [(metric, columns) for metric in metrics if (columns := _metric_columns(curves, metric))]
    if not panels:
        return None
    epoch_ends = np.cumsum([curves.batches_per_epoch[e] for e in sorted(curves.batches_per_epoch)])
    columns_count = min(3, len(panels))
    rows = (len(panels) + columns_count - 1) // columns_count
    figure, axes = plt.subplots(rows, columns_count, figsize=(5 * columns_count, 3.4 * rows), squeeze=False)
    for axis, (metric, names) in zip(axes.flat, panels):
        for name in names:
            points = finite(curves.batch.get(name, []))
            if points:
                # Markers keep short runs (a single logging interval) visible.
                axis.plot(*zip(*points), linewidth=1.0, marker="." if len(points) < 50 else None,
                          label=f"train {name} (interval)")
            if name != metric and _LAYER_SUFFIX.match(name[len(metric):]):
                continue  # per-layer curves: interval values only, or the legend drowns the panel
            for section, values in curves.epoch.items():
                epoch_points = finite(values.get(name, []))
                if not epoch_points:
                    continue
                # Epoch summaries are drawn at the last batch of their epoch, on the same x axis.
                xs = [epoch_ends[int(e) - 1] if 0 < int(e) <= len(epoch_ends) else e for e, _ in epoch_points]
                axis.plot(xs, [v for _, v in epoch_points], marker="o", linestyle="--", label=f"{section} {name} (epoch)")
        axis.set_title(metric)
        axis.set_xlabel("batch" if len(epoch_ends) else "epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.tight_layout()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path


def plot_codebook_usage(unit_counts: Dict[str, np.ndarray], output_path: str | Path, title: str = "") -> Path:
    """Codeword frequencies sorted from most to least used, one panel per unit source (log y).

    ``unit_counts[source]`` is ``[codeword]`` frame counts.
    """
    figure, axes = plt.subplots(1, len(unit_counts), figsize=(4.5 * len(unit_counts), 3.2), squeeze=False)
    for axis, (source, counts) in zip(axes[0], unit_counts.items()):
        counts = np.asarray(counts, dtype=np.float64)
        frequencies = np.sort(counts)[::-1] / max(counts.sum(), 1.0)
        active = int((counts > 0).sum())
        axis.bar(np.arange(len(frequencies)), frequencies, width=1.0, color="tab:blue")
        axis.set_yscale("log")
        axis.set_title(f"{source}: {active}/{len(counts)} active", fontsize=9)
        axis.set_xlabel("codeword rank")
        axis.set_ylabel("frame fraction")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    output_path = Path(output_path)
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path


def order_codewords_by_phone(counts: np.ndarray) -> np.ndarray:
    """Active codeword indices ordered by their most likely phone (row order), then by p(phone|unit) descending.

    ``counts`` is ``[phone, unit]``; rows are assumed to be in the wanted phone order.
    """
    unit_totals = counts.sum(axis=0)
    active = np.flatnonzero(unit_totals > 0)
    conditional = counts[:, active] / unit_totals[active]
    best_phone = conditional.argmax(axis=0)
    purity = conditional.max(axis=0)
    return active[np.lexsort((-purity, best_phone))]


def plot_phone_unit_heatmap(counts: np.ndarray, phones: Sequence[str], output_path: str | Path,
                            title: str = "") -> Path:
    """p(phone | codeword) for active codewords; codewords sorted by their most likely phone, phones in
    ``phones`` order (a fixed phonetic order), so a good unit set shows a block diagonal."""
    counts = np.asarray(counts, dtype=np.float64)
    order = order_codewords_by_phone(counts)
    conditional = counts[:, order] / np.maximum(counts[:, order].sum(axis=0, keepdims=True), 1.0)
    figure, axis = plt.subplots(figsize=(max(6.0, 0.04 * len(order) + 3), 0.2 * len(phones) + 1.5))
    image = axis.imshow(conditional, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0)
    axis.set_yticks(np.arange(len(phones)))
    axis.set_yticklabels(phones, fontsize=7)
    axis.set_xlabel(f"codeword ({len(order)} active, sorted by most likely phone)")
    axis.set_ylabel("phone")
    figure.colorbar(image, ax=axis, label="p(phone | codeword)", fraction=0.03)
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    output_path = Path(output_path)
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path
