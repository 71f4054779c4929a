"""Counting optimizer updates from inside a module, since ESPnet never tells the model the step.

fairseq's ``freeze_finetune_updates`` compares against the number of *optimizer updates*. ESPnet's
Trainer passes no step counter to the model, and counting forwards would be wrong under gradient
accumulation, validation, skipped non-finite steps and AMP overflow. So we count at the source:
one process-wide ``torch.optim`` step post-hook increments the ``num_updates`` buffer of every
registered module whose parameters the stepping optimizer holds. The Trainer's own rules (no
``optimizer.step()`` on a non-finite gradient norm; ``GradScaler.step`` skips on overflow) carry
over unchanged, and the buffer is saved in every checkpoint, so ``--resume`` continues the count.
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle

# Modules are held weakly: registering never keeps a model alive.
_COUNTED_MODULES: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()
_HOOK: Optional[RemovableHandle] = None


def _after_optimizer_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    if not _COUNTED_MODULES:
        return
    held = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    for module in list(_COUNTED_MODULES):
        if any(id(parameter) in held for parameter in module.parameters()):
            module.num_updates += 1


def count_optimizer_updates(module: torch.nn.Module) -> None:
    """From now on, ``module.num_updates`` (a LongTensor buffer) counts steps of any optimizer
    holding one of its parameters. Idempotent; call it again on copies (``deepcopy``, unpickling)."""
    global _HOOK
    if not isinstance(getattr(module, "num_updates", None), torch.Tensor):
        raise TypeError(f"{type(module).__name__} needs a num_updates buffer to count updates")
    if _HOOK is None:
        _HOOK = register_optimizer_step_post_hook(_after_optimizer_step)
    _COUNTED_MODULES.add(module)
