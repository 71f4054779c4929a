"""The ESPnet face of a pure-PyTorch SSL model (DinoSR or data2vec) for pre-training.

ESPnet's Trainer calls ``model(speech=..., speech_lengths=..., utt_id=...)`` and expects
``(loss, stats, weight)`` passed through ``force_gatherable``. The SSL model sits at attribute
``ssl`` so the checkpoint keys are ``ssl.*`` (``ssl.student.*`` for the student, INTERFACES 2).

Why ``weight`` = number of masked frames (not batch size): under DDP ESPnet rescales each rank's
loss by ``weight / sum(weights)``; with the masked-frame count this reproduces fairseq's
objective, the mean over *all masked frames of the global batch* (spec 1.2 step 10), and the
logged statistics are averaged over masked frames too.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from dinosr_espnet.tasks.health import TrainingHealthMonitor


class SSLPretrainModel(AbsESPnetModel):
    """Wraps ``DinoSRModel``/``Data2VecModel`` (INTERFACES 1) for ESPnet's Trainer.

    Args:
        ssl: the SSL model: ``forward(waveform[B,S], lengths[B]) -> SSLOutput`` and
            ``on_optimizer_step()``.
        health_monitor: optional; receives each training forward's statistics and every step.
    """

    def __init__(self, ssl: torch.nn.Module, health_monitor: Optional[TrainingHealthMonitor] = None):
        super().__init__()
        self.ssl = ssl
        # A plain attribute (not a submodule): no parameters, no state-dict entries.
        self.health_monitor = health_monitor

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """speech: [batch, samples] (unpadded crops); speech_lengths: [batch].

        ``kwargs`` absorbs ``utt_id``, which the Trainer adds to every batch.
        """
        output = self.ssl(speech, speech_lengths)
        stats = {key: float(value) for key, value in output.stats.items()}
        stats["loss"] = float(output.loss.detach())
        if self.training and self.health_monitor is not None:
            self.health_monitor.observe(stats, int(speech_lengths.sum()))
        stats_tensors = {key: torch.tensor(value) for key, value in stats.items()}
        weight = torch.tensor(float(output.num_masked))
        return force_gatherable((output.loss, stats_tensors, weight), output.loss.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                      ) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    def on_optimizer_step(self) -> None:
        """Called once per *applied* optimizer step (see ``DinoSRTask.build_optimizers``)."""
        self.ssl.on_optimizer_step()
        if self.health_monitor is not None:
            self.health_monitor.on_optimizer_step(getattr(self.ssl, "num_updates", None))
