"""Read an ESPnet ``train.log`` into curves.

ESPnet's reporter (espnet2/train/reporter.py) writes two kinds of lines, after the logging prefix
``[host] <date> (trainer:NNN) INFO:``:

- per logging interval: ``<E>epoch:<key>:<start>-<end>batch: name=value, name=value, ...``
  (key ``train``; values averaged over the interval; format ``{:.3f}`` or ``{:.3e}``);
- per epoch: ``<E>epoch results: [train] name=value, ..., [valid] name=value, ...`` where a few values are
  not numbers (``time=1 minute and 3.2 seconds``, which may itself contain commas).

ESPnet 202511's interval message omits the ", " before the field whose index equals the number of
batches in the interval (``pred_ppl=13.562active_codewords=10.751``), so a value may be glued to the next
name; the parser splits there. Only ``name=<number>`` pairs are kept (``nan``/``inf`` included), so unknown fields and durations do not
break parsing.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_BATCH_LINE = re.compile(r"(\d+)epoch:(\w+):(\d+)-(\d+)batch:\s*(.*)$")
_EPOCH_LINE = re.compile(r"(\d+)epoch results:\s*(.*)$")
_SECTION = re.compile(r"\[(\w+)\]\s*")
_PAIR = re.compile(r"([A-Za-z_][\w.]*)=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)(?=\s*,|\s*$|[A-Za-z_][\w.]*=)")


@dataclass
class TrainingCurves:
    """``batch[name]`` = [(global batch index, value)] from interval lines (training);
    ``epoch[section][name]`` = [(epoch, value)] from epoch summaries (``train``, ``valid``, ...)."""

    batch: Dict[str, List[Tuple[float, float]]] = field(default_factory=dict)
    epoch: Dict[str, Dict[str, List[Tuple[float, float]]]] = field(default_factory=dict)
    batches_per_epoch: Dict[int, int] = field(default_factory=dict)

    def metric_names(self) -> List[str]:
        names = set(self.batch)
        for section in self.epoch.values():
            names.update(section)
        return sorted(names)


def _pairs(text: str) -> Dict[str, float]:
    return {name: float(value) for name, value in _PAIR.findall(text)}


@dataclass(frozen=True)
class IntervalLine:
    """One reporter interval line: ``<epoch>epoch:<key>:<first>-<last>batch: name=value, ...``."""

    epoch: int
    key: str
    first_batch: int
    last_batch: int
    values: Dict[str, float]


def parse_interval_line(line: str) -> Optional[IntervalLine]:
    """The interval line in ``line``, or None when it is another kind of line."""
    match = _BATCH_LINE.search(line)
    if match is None:
        return None
    epoch, key, first, last, rest = match.groups()
    return IntervalLine(int(epoch), key, int(first), int(last), _pairs(rest))


def parse_train_log(path: str | Path) -> TrainingCurves:
    """Parse ``path``; batch indices are made global by adding the batch count of earlier epochs."""
    path = Path(path)
    curves = TrainingCurves()
    interval_lines: List[Tuple[int, str, int, Dict[str, float]]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            interval = parse_interval_line(line)
            if interval is not None:
                epoch_number, end_batch = interval.epoch, interval.last_batch
                curves.batches_per_epoch[epoch_number] = max(curves.batches_per_epoch.get(epoch_number, 0), end_batch)
                interval_lines.append((epoch_number, interval.key, end_batch, interval.values))
                continue
            epoch_match = _EPOCH_LINE.search(line)
            if epoch_match:
                epoch_number = int(epoch_match.group(1))
                body = epoch_match.group(2)
                sections = list(_SECTION.finditer(body))
                for index, section in enumerate(sections):
                    stop = sections[index + 1].start() if index + 1 < len(sections) else len(body)
                    for name, value in _pairs(body[section.end():stop]).items():
                        curves.epoch.setdefault(section.group(1), {}).setdefault(name, []).append(
                            (float(epoch_number), value))
    # Offsets from the number of batches actually seen in earlier epochs (epochs may differ in length).
    offsets: Dict[int, int] = {}
    running = 0
    for epoch_number in sorted(curves.batches_per_epoch):
        offsets[epoch_number] = running
        running += curves.batches_per_epoch[epoch_number]
    for epoch_number, key, end_batch, values in interval_lines:
        if key != "train":
            continue
        step = float(offsets[epoch_number] + end_batch)
        for name, value in values.items():
            curves.batch.setdefault(name, []).append((step, value))
    return curves


def finite(points: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
    return [(x, y) for x, y in points if math.isfinite(y)]
