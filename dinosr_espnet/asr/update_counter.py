"""Counting optimizer updates from inside a module, since ESPnet never tells the model the step.

fairseq's ``freeze_finetune_updates`` compares against the number of *optimizer updates*. ESPnet's
Trainer passes no step counter to the model, and counting forwards would be wrong under gradient
accumulation, validation, skipped non-finite steps and AMP overflow. So we count at the source:
a global ``torch.optim`` step post-hook increments the module's ``num_updates`` buffer whenever an
optimizer that holds one of the module's parameters has actually stepped. The Trainer's own rule
(no ``optimizer.step()`` on a non-finite gradient norm; ``GradScaler.step`` skips on overflow) then
carries over unchanged, and the buffer is saved in every checkpoint, so ``--resume`` continues the
count.
"""
from __future__ import annotations

import weakref

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


class OptimizerUpdateCounter:
    """Increments ``module.num_updates`` (a LongTensor buffer) after each step of an optimizer
    that holds any of ``module``'s parameters. Holds the module weakly; the hook is removed when
    the module is garbage-collected."""

    def __init__(self, module: torch.nn.Module):
        self._module = weakref.ref(module)
        # optimizer id -> whether it holds our parameters (decided once per optimizer)
        self._owns: "weakref.WeakKeyDictionary[torch.optim.Optimizer, bool]" = weakref.WeakKeyDictionary()
        handle = register_optimizer_step_post_hook(self._after_step)
        weakref.finalize(module, handle.remove)

    def _holds_module_parameters(self, optimizer: torch.optim.Optimizer, module: torch.nn.Module) -> bool:
        if optimizer not in self._owns:
            ours = {id(parameter) for parameter in module.parameters()}
            self._owns[optimizer] = any(id(parameter) in ours for group in optimizer.param_groups
                                        for parameter in group["params"])
        return self._owns[optimizer]

    def _after_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        module = self._module()
        if module is None or not self._holds_module_parameters(optimizer, module):
            return
        module.num_updates += 1
