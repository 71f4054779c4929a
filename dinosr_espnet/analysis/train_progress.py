"""Progress of a running ESPnet training from its ``train.log``: one short console line now and then.

``TrainingProgress.feed(line)`` reads the log line by line (ESPnet's reporter interval lines,
``<E>epoch:train:<a>-<b>batch: ... loss=...``, and ``<E>/<M>epoch started``) and returns a line to
print when one is due (the first report, then at most one every ``interval_seconds``, and the last
update), e.g.::

    [exp/pretrain_dinosr] update 240/1000 (24%), loss 4.210, elapsed 3m12s, remaining ~10m08s

Updates = iterations / accum_grad, with ``iterations = (E - 1) x num_iters_per_epoch + b``; the total
is ``max_epoch x num_iters_per_epoch / accum_grad``. Those three numbers come from the run's
``config.yaml`` (ESPnet writes it into the output dir before training starts), read when the first
interval line arrives. Without ``num_iters_per_epoch`` (an epoch = one pass over the data) the line
gives the epoch and batch, and, once an epoch has ended, the total estimated from its length. The rate,
and so the remaining time, is measured between the first and the newest report (at the first report:
from the follower's start and the update the attempt began at, as a resumed run starts mid-way), so
the minute or so of start-up does not inflate the estimate.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import yaml

from dinosr_espnet.analysis.train_log import IntervalLine, parse_interval_line

_EPOCH_STARTED = re.compile(r"(\d+)/(\d+)epoch started")


@dataclass
class TrainingPlan:
    """What a full run does: ``max_epoch`` epochs of ``iterations_per_epoch`` (None = a data pass)."""

    max_epoch: Optional[int] = None
    iterations_per_epoch: Optional[int] = None
    accum_grad: int = 1

    @classmethod
    def from_config(cls, path: Path) -> "TrainingPlan":
        """From an ESPnet ``config.yaml``; an absent or unreadable file gives an unknown plan."""
        try:
            config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return cls()
        if not isinstance(config, dict):
            return cls()

        def positive(name: str) -> Optional[int]:
            value = config.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

        return cls(positive("max_epoch"), positive("num_iters_per_epoch"), positive("accum_grad") or 1)


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m12s`` or ``45s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class TrainingProgress:
    """Turns train.log lines into progress lines (see the module docstring).

    Args:
        label: how the run is named in each line (e.g. its output dir).
        plan: epochs / iterations / accumulation; None = read ``config_path`` at the first report.
        config_path: the run's ``config.yaml``.
        total_updates: overrides the total computed from the plan.
        interval_seconds: at most one line per this many seconds (the last update always prints).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, label: str, plan: Optional[TrainingPlan] = None, config_path: Optional[Path] = None,
                 total_updates: Optional[int] = None, interval_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.plan = plan
        self.config_path = config_path
        self.total_override = total_updates
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.started = clock()
        self.first_update: Optional[int] = None      # the update the run stood at when we began watching
        self.first_report: Optional[tuple] = None     # (time, update) of the first report seen
        self.last_printed_at: Optional[float] = None
        self.pending: Optional[str] = None            # the newest line not printed yet
        self.batches_per_epoch: Dict[int, int] = {}

    def _plan(self) -> TrainingPlan:
        if self.plan is None:
            self.plan = TrainingPlan.from_config(self.config_path) if self.config_path else TrainingPlan()
        return self.plan

    def _iterations_per_epoch(self, plan: TrainingPlan, epoch: int) -> Optional[int]:
        if plan.iterations_per_epoch:
            return plan.iterations_per_epoch
        finished = [count for number, count in self.batches_per_epoch.items() if number < epoch]
        return max(finished) if finished else None

    def feed(self, line: str) -> Optional[str]:
        """Read one log line; returns a progress line when one is due, else None."""
        started = _EPOCH_STARTED.search(line)
        if started:
            plan = self._plan()
            if plan.max_epoch is None:
                plan.max_epoch = int(started.group(2))
            return None
        interval = parse_interval_line(line)
        if interval is None or interval.key != "train":
            return None
        self.batches_per_epoch[interval.epoch] = max(self.batches_per_epoch.get(interval.epoch, 0),
                                                     interval.last_batch)
        message, is_last = self._describe(interval)
        now = self.clock()
        due = (self.last_printed_at is None or is_last
               or now - self.last_printed_at >= self.interval_seconds)
        if not due:
            self.pending = message
            return None
        self.last_printed_at, self.pending = now, None
        return message

    def flush(self) -> Optional[str]:
        """The newest progress line that was not due yet (call it when the run ends)."""
        message, self.pending = self.pending, None
        return message

    def _describe(self, interval: IntervalLine):
        plan = self._plan()
        per_epoch = self._iterations_per_epoch(plan, interval.epoch)
        elapsed = self.clock() - self.started
        parts = []
        is_last = False
        if per_epoch is not None:
            updates = ((interval.epoch - 1) * per_epoch + interval.last_batch) // plan.accum_grad
            if self.first_update is None:
                # the update at which this attempt began: the start of the first epoch we saw
                self.first_update = (interval.epoch - 1) * per_epoch // plan.accum_grad
            total = self.total_override
            if total is None and plan.max_epoch is not None:
                total = plan.max_epoch * per_epoch // plan.accum_grad
            if total:
                estimated = "" if plan.iterations_per_epoch or self.total_override else " (est.)"
                parts.append(f"update {updates}/{total}{estimated} ({100 * updates / total:.0f}%)")
                is_last = updates >= total
            else:
                parts.append(f"update {updates}")
        else:
            epochs = f"/{plan.max_epoch}" if plan.max_epoch else ""
            parts.append(f"epoch {interval.epoch}{epochs}, batch {interval.last_batch}")
            updates = total = None
        if "loss" in interval.values:
            parts.append(f"loss {interval.values['loss']:.3f}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        rate = None
        if updates is not None and self.first_report is None:
            self.first_report = (self.clock(), updates)
        if updates is not None and updates > self.first_report[1]:
            rate = (updates - self.first_report[1]) / max(self.clock() - self.first_report[0], 1e-9)
        elif updates is not None and self.first_update is not None and updates > self.first_update:
            rate = (updates - self.first_update) / max(elapsed, 1e-9)
        if total and rate:
            parts.append(f"remaining ~{format_duration(max(total - updates, 0) / rate)}")
        return f"[{self.label}] " + ", ".join(parts), is_last
