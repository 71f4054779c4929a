"""Training-health log lines and collapse warnings for SSL pre-training (spec 6.1).

ESPnet's reporter already prints every statistic ``forward`` returns (loss, target_ppl, pred_ppl,
active codewords, ema_decay, ...) every ``--log_interval`` iterations. This monitor adds, every
``--health_log_interval`` optimizer steps, one compact ``health:`` line with the learning rate and
the audio throughput, and a loud ``logging.warning`` when the run looks collapsed:

- codebook usage collapses: mean ``target_ppl < collapse_target_ppl_ratio * V``
  (cpu_demo_calibration: a collapsed tiny run went 43 -> 2.9 of V = 128 while its loss *fell*);
- the loss falls far below the expected range: ``loss < collapse_min_loss`` (default
  ``0.1 * ln V``; the official run sits at ~1.4 nats @200k and ~1.1 @400k for V = 256, and issue #2's
  collapsed bf16 run showed 0.2).
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from typing import Dict, List, Optional

import torch

from dinosr_espnet.constants import SAMPLE_RATE



def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class TrainingHealthMonitor:
    """Accumulates per-forward statistics; reports and checks them every ``interval`` updates.

    Args:
        interval: optimizer steps between two health lines (0 disables the monitor).
        codebook_size: V, or None for models without codebooks (data2vec): no ppl check.
        collapse_target_ppl_ratio: warn when target_ppl < ratio * V.
        collapse_min_loss: warn when the loss is below this; None = 0.1 * ln V (codebook models
            only).
    """

    def __init__(self, interval: int, codebook_size: Optional[int],
                 collapse_target_ppl_ratio: float = 0.1, collapse_min_loss: Optional[float] = None):
        self.interval = interval
        self.codebook_size = codebook_size
        self.collapse_target_ppl_ratio = collapse_target_ppl_ratio
        if collapse_min_loss is None and codebook_size:
            collapse_min_loss = 0.1 * math.log(codebook_size)
        self.collapse_min_loss = collapse_min_loss
        self.optimizers: List[torch.optim.Optimizer] = []
        self.updates = 0
        self.warnings_issued = 0
        self._reset()

    def _reset(self) -> None:
        self._sums: Dict[str, float] = defaultdict(float)
        self._forwards = 0
        self._samples = 0
        self._start = time.perf_counter()

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizers.append(optimizer)

    def observe(self, stats: Dict[str, float], num_samples: int) -> None:
        """Record the statistics of one training forward over ``num_samples`` audio samples."""
        if self.interval <= 0:
            return
        for key, value in stats.items():
            self._sums[key] += float(value)
        self._forwards += 1
        self._samples += num_samples

    def on_optimizer_step(self, num_updates: Optional[int] = None) -> Optional[Dict[str, float]]:
        """Count one optimizer step; every ``interval`` steps log, check and return the means.

        ``num_updates``: the model's own (checkpointed) update counter, so that the count
        continues across resumes; by default the monitor counts the calls itself.
        """
        self.updates = self.updates + 1 if num_updates is None else num_updates
        if self.interval <= 0 or self.updates % self.interval or not self._forwards:
            return None
        means = {key: total / self._forwards for key, total in self._sums.items()}
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        means["audio_seconds_per_second"] = self._samples / SAMPLE_RATE / elapsed * _world_size()
        if self.optimizers:
            means["lr"] = self.optimizers[0].param_groups[0]["lr"]
        self._reset()
        logging.info("health: update %d: %s", self.updates,
                     ", ".join(f"{key}={value:.4g}" for key, value in sorted(means.items())))
        self.check(means)
        return means

    def check(self, means: Dict[str, float]) -> List[str]:
        """Warn (loudly) about collapse signs in ``means``; returns the warning messages."""
        messages = []
        target_ppl = means.get("target_ppl")
        if self.codebook_size and target_ppl is not None:
            threshold = self.collapse_target_ppl_ratio * self.codebook_size
            if target_ppl < threshold:
                messages.append(
                    f"CODEBOOK COLLAPSE? target_ppl {target_ppl:.2f} < {self.collapse_target_ppl_ratio}"
                    f" x V ({threshold:.1f}): few codewords are used as targets. Typical causes: lr too"
                    " high, EMA decay too low, bf16 (spec 6.1). Consider stopping this run.")
        loss = means.get("loss")
        if self.collapse_min_loss is not None and loss is not None and loss < self.collapse_min_loss:
            messages.append(
                f"TEACHER COLLAPSE? loss {loss:.3f} nats < {self.collapse_min_loss:.3f}, far below the"
                " expected range (official Base: ~1.4 @200k, ~1.1 @400k updates for V=256); a very"
                " low self-distillation loss usually means the teacher collapsed (spec 6.1).")
        for message in messages:
            logging.warning("!" * 20 + " " + message)
        self.warnings_issued += len(messages)
        return messages
