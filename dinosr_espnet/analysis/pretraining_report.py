"""Stage 7's view of every pre-training run: training-curve PNGs and a codebook-health table.

For each ``<exp_root>/pretrain_<tag>/train.log`` (ESPnet's log, parsed by ``train_log``):

- ``<exp_root>/pretrain_<tag>/training_curves.png``: loss, target_ppl, active codewords (mean and per
  target layer), lr, ... against the update (``plots.plot_training_curves``);
- a copy in ``<figures_dir>/pretrain_<tag>_training_curves.png`` beside RESULTS.md, so that the table
  committed with a measured RESULTS.md links a picture that is committed with it (``exp/`` is not);
- one table row: last logged loss / target_ppl and active codewords of each target layer, first and
  last logged interval (``active_codewords_<k>`` = codewords nearest to at least one target of the
  update, averaged over the logging interval; a codebook whose count stays far below V has dead
  codewords).

Every PNG is written to a temporary name and renamed into place.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import List, Optional

from dinosr_espnet.analysis.train_log import TrainingCurves, parse_train_log

LAYER_ACTIVE = re.compile(r"^active_codewords_(\d+)$")
FIGURES_DIR_NAME = "RESULTS_figures"


def _draw_atomically(curves: TrainingCurves, path: Path) -> Optional[Path]:
    from dinosr_espnet.analysis.plots import plot_training_curves

    temporary = path.with_name(path.stem + ".tmp" + path.suffix)   # savefig picks the format by suffix
    if plot_training_curves(curves, temporary) is None:
        return None
    os.replace(temporary, path)
    return path


def _last(curves: TrainingCurves, name: str) -> Optional[float]:
    points = curves.batch.get(name)
    return points[-1][1] if points else None


def _format(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _layer_activity(curves: TrainingCurves) -> str:
    """``first -> last`` logged active codewords of each target layer, ``" / "``-separated."""
    layers = sorted((int(match.group(1)), name) for name in curves.batch if (match := LAYER_ACTIVE.match(name)))
    cells = []
    for _, name in layers:
        points = curves.batch[name]
        cells.append(f"{points[0][1]:.0f} → {points[-1][1]:.0f}")
    return " / ".join(cells) if cells else "-"


def pretraining_lines(exp_root: Path, results_dir: Path) -> List[str]:
    """Markdown lines (empty when no pre-training log exists); draws and copies the PNGs."""
    logs = sorted(Path(exp_root).glob("pretrain_*/train.log"))
    rows = []
    for log in logs:
        tag = log.parent.name[len("pretrain_"):]
        curves = parse_train_log(log)
        if not curves.batch:
            continue
        picture = _draw_atomically(curves, log.parent / "training_curves.png")
        link = "-"
        if picture is not None:
            figures_dir = Path(results_dir) / FIGURES_DIR_NAME
            figures_dir.mkdir(parents=True, exist_ok=True)
            copy = figures_dir / f"pretrain_{tag}_training_curves.png"
            temporary = copy.with_name(copy.name + ".tmp")
            shutil.copyfile(picture, temporary)
            os.replace(temporary, copy)
            link = f"[curves]({FIGURES_DIR_NAME}/{copy.name})"
        last_batch = max((points[-1][0] for points in curves.batch.values() if points), default=0)
        rows.append(f"| {tag} | {last_batch:.0f} | {_format(_last(curves, 'loss'), 3)} | "
                    f"{_format(_last(curves, 'target_ppl'))} | {_layer_activity(curves)} | "
                    f"{_format(_last(curves, 'reseeded_codewords'))} | {link} |")
    if not rows:
        return []
    return ["| pre-training | batches logged | loss (last) | target_ppl (last) | active codewords per target "
            "layer (first → last interval) | re-seeded per update (last) | curves |",
            "|---|---|---|---|---|---|---|", *rows]
