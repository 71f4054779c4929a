"""fairseq's tri-stage learning-rate schedule, step-exact (spec 2.2), as an ESPnet batch scheduler.

ESPnet ships ``tristagelr`` (``espnet2/schedulers/tristage_lr.py``) with the same three phases, but
its ``get_lr`` evaluates the schedule at ``last_epoch + 1``: the first optimizer step already uses
the learning rate of update 1, so every step is one update ahead of fairseq, where update ``u``
(0-based) uses ``lr(u)`` (``step_update(0)`` at start-up, ``step_update(num_updates)`` after each
update). This class evaluates the schedule at ``last_epoch``, which equals the number of finished
optimizer steps, and takes fairseq's ``max_update`` / ``phase_ratio`` spelling.

Phases for ``max_update = 400000``, ``phase_ratio = (0.03, 0.47, 0.50)``, peak lr ``5e-4``:
linear warm-up 12k updates from ``init_lr_scale * peak`` (5e-6) to the peak, hold 188k updates,
exponential decay over 200k updates to ``final_lr_scale * peak`` (5e-6), then constant.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
from torch.optim.lr_scheduler import LRScheduler


def tri_stage_scale(update: int, warmup_steps: int, hold_steps: int, decay_steps: int,
                    init_lr_scale: float, final_lr_scale: float) -> float:
    """Multiplier of the peak learning rate used by optimizer update ``update`` (0-based)."""
    if update < warmup_steps:
        return init_lr_scale + (1.0 - init_lr_scale) * update / warmup_steps
    update -= warmup_steps
    if update < hold_steps:
        return 1.0
    update -= hold_steps
    if update <= decay_steps and decay_steps > 0:
        return math.exp(math.log(final_lr_scale) * update / decay_steps)
    return final_lr_scale


class TriStageLR(LRScheduler, AbsBatchStepScheduler):
    """Warm-up / hold / exponential decay, stepped once per optimizer update.

    Args:
        optimizer: the wrapped optimizer; its ``lr`` is the peak learning rate.
        max_update: total number of optimizer updates of the run (fairseq ``max_update``).
        phase_ratio: fractions of ``max_update`` for warm-up, hold and decay (fairseq
            ``phase_ratio``); each phase has ``int(max_update * ratio)`` updates, as in fairseq.
        init_lr_scale: learning rate at update 0, as a fraction of the peak.
        final_lr_scale: learning rate at the end of the decay, as a fraction of the peak.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_update: int = 400000,
                 phase_ratio: Sequence[float] = (0.03, 0.47, 0.50), init_lr_scale: float = 0.01,
                 final_lr_scale: float = 0.01, last_epoch: int = -1):
        if len(phase_ratio) != 3 or not math.isclose(sum(phase_ratio), 1.0):
            raise ValueError(f"phase_ratio must be three fractions summing to 1, got {list(phase_ratio)}")
        if not (0.0 < init_lr_scale <= 1.0 and 0.0 < final_lr_scale <= 1.0):
            raise ValueError("init_lr_scale and final_lr_scale must lie in (0, 1]")
        self.max_update = int(max_update)
        self.warmup_steps = int(self.max_update * phase_ratio[0])
        self.hold_steps = int(self.max_update * phase_ratio[1])
        self.decay_steps = int(self.max_update * phase_ratio[2])
        self.init_lr_scale = init_lr_scale
        self.final_lr_scale = final_lr_scale
        super().__init__(optimizer, last_epoch)

    def scale(self, update: Optional[int] = None) -> float:
        """Multiplier of the peak lr for ``update`` (default: the next optimizer update)."""
        return tri_stage_scale(self.last_epoch if update is None else update, self.warmup_steps,
                               self.hold_steps, self.decay_steps, self.init_lr_scale,
                               self.final_lr_scale)

    def get_lr(self) -> List[float]:
        # last_epoch = number of optimizer updates done so far = index of the next update.
        return [base_lr * self.scale() for base_lr in self.base_lrs]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(warmup_steps={self.warmup_steps}, "
                f"hold_steps={self.hold_steps}, decay_steps={self.decay_steps}, "
                f"init_lr_scale={self.init_lr_scale}, final_lr_scale={self.final_lr_scale})")
