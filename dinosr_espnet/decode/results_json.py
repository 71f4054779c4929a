"""Stage 7's machine-readable results: ``RESULTS.json`` next to ``RESULTS.md``.

A JSON list, one row per (split, init, test set, decoding), in the order of the RESULTS.md tables::

    {"split": "1h", "init": "dinosr", "test_set": "test_clean", "decode": "4gram",
     "wer": 41.25, "cer": 20.5, "seeds": [1, 2], "finetune_updates": 400}

``wer`` / ``cer``: means over the seeds that have the value (null when none has it); ``seeds``: the
seeds the row averages; ``init`` and ``split`` as in RESULTS.md (``finetune_<init>_<split>_seed<seed>``);
``finetune_updates``: optimizer updates of one fine-tuning run, ``max_epoch x num_iters_per_epoch /
accum_grad`` from the run's ``config.yaml`` (null when it is not there or an epoch is a full pass
over the data; the sorted list of the distinct known values if the seeds of a row differ).
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

def finetune_updates(run_dir: Path) -> Optional[int]:
    """Optimizer updates of the fine-tuning run in ``run_dir`` from its ESPnet ``config.yaml``."""
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.is_file():
        return None
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{config_path}: not valid YAML ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a mapping, got {type(config).__name__}")
    epochs, iterations, accumulation = (config.get(key) for key in ("max_epoch", "num_iters_per_epoch", "accum_grad"))
    if not isinstance(epochs, int) or not isinstance(iterations, int):
        return None
    accumulation = accumulation if isinstance(accumulation, int) and accumulation > 0 else 1
    return epochs * iterations // accumulation


def _mean(values: List[float]) -> Optional[float]:
    return round(statistics.fmean(values), 4) if values else None


def results_rows(scores: Iterable[Any], exp_root: Path,
                 row_order: Optional[List[Tuple[str, str, str, str]]] = None) -> List[Dict[str, Any]]:
    """Rows from ``results_table.Score`` objects (fields tag, split, seed, data_set, mode, wer, cer).

    ``row_order``: (split, init, test_set, decode) keys in the wanted order (default: sorted).
    """
    grouped: Dict[Tuple[str, str, str, str], List[Any]] = defaultdict(list)
    for score in scores:
        grouped[(score.split, score.tag, score.data_set, score.mode)].append(score)
    updates_of_run: Dict[Tuple[str, str, int], Optional[int]] = {}
    rows = []
    for key in row_order or sorted(grouped):
        members = grouped.get(key)
        if not members:
            continue
        split, init, test_set, decode = key
        updates = set()
        for score in members:
            run = (init, split, score.seed)
            if run not in updates_of_run:
                updates_of_run[run] = finetune_updates(Path(exp_root) / f"finetune_{init}_{split}_seed{score.seed}")
            updates.add(updates_of_run[run])
        # one value when every seed agrees, else the distinct known values (a row to look at)
        updates_value = next(iter(updates)) if len(updates) == 1 else sorted(v for v in updates if v is not None)
        rows.append({
            "split": split, "init": init, "test_set": test_set, "decode": decode,
            "wer": _mean([float(s.wer) for s in members if s.wer is not None]),
            "cer": _mean([float(s.cer) for s in members if s.cer is not None]),
            "seeds": sorted({s.seed for s in members}),
            "finetune_updates": updates_value,
        })
    return rows


def write_results_json(path: Path, rows: List[Dict[str, Any]]) -> Path:
    """Write ``rows`` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    # one row per line: readable, and a re-run's diff shows the rows that changed
    temporary.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n", encoding="utf-8")
    temporary.replace(path)
    return path
