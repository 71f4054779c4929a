"""The ESPnet face of a pure-PyTorch SSL model (DinoSR or data2vec) for pre-training.

ESPnet's Trainer calls ``model(speech=..., speech_lengths=..., utt_id=...)`` and expects
``(loss, stats, weight)`` passed through ``force_gatherable``. The SSL model sits at attribute
``ssl`` so the checkpoint keys are ``ssl.*`` (``ssl.student.*`` for the student, INTERFACES 2).

Loss normalisation: fairseq's objective is the mean over *all masked frames of the global batch*
of an optimizer step (spec 1.2 step 10), the batch being every micro-batch of every GPU. ESPnet
turns the returned ``(loss, weight)`` of micro-batch ``m`` on rank ``r`` into
``loss * weight / W_m * world_size / accum_grad`` (``W_m`` = sum of the weights over ranks) and
DDP averages the gradients over ranks, so it weighs ranks by ``weight`` but every micro-batch
equally. ``weight`` is the local number of masked frames ``n_r`` (the logged statistics are then
masked-frame averages too), and in training the returned loss is the local masked-frame mean
``l_r`` scaled by ``accum_grad * W_m / W_1..m``, where ``W_1..m`` counts the masked frames of all
ranks in micro-batches 1..m of the current step; before that, the gradients already accumulated
(micro-batches 1..m-1, normalised by ``W_1..m-1``) are rescaled by ``W_1..m-1 / W_1..m``. After
any micro-batch the accumulated gradient is thus the gradient of the masked-frame mean over
everything seen in the step, and after the last one that of fairseq's objective: ``G`` GPUs x
``accum_grad a`` = ``G * a`` GPUs, exactly (up to fp rounding). A new step starts when no
parameter holds a gradient (ESPnet's ``zero_grad`` sets them to None, also after a skipped step)
or after ``on_optimizer_step``. Not exact under ESPnet's single-process multi-GPU DataParallel
(``--ngpu > 1`` without DDP), whose replicas do not keep the count.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from dinosr_espnet.nets.codebook import distributed_sum_
from dinosr_espnet.tasks.health import TrainingHealthMonitor


class SSLPretrainModel(AbsESPnetModel):
    """Wraps ``DinoSRModel``/``Data2VecModel`` (INTERFACES 1) for ESPnet's Trainer.

    Args:
        ssl: the SSL model: ``forward(waveform[B,S], lengths[B]) -> SSLOutput`` and
            ``on_optimizer_step()``.
        health_monitor: optional; receives each training forward's statistics and every step.
        accum_grad: ESPnet's ``--accum_grad`` (the Trainer divides every micro-batch's loss by it).
        input_standardized: ``speech`` comes already standardised per utterance (``DinoSRTask``'s
            collate standardises whole utterances before cropping, as fairseq); the model then
            does not standardise the crops again.
    """

    def __init__(self, ssl: torch.nn.Module, health_monitor: Optional[TrainingHealthMonitor] = None,
                 accum_grad: int = 1, input_standardized: bool = False):
        super().__init__()
        if accum_grad < 1:
            raise ValueError(f"accum_grad must be >= 1, got {accum_grad}")
        self.ssl = ssl
        # A plain attribute (not a submodule): no parameters, no state-dict entries.
        self.health_monitor = health_monitor
        self.accum_grad = accum_grad
        self.input_standardized = input_standardized
        # Masked frames (all ranks) of the micro-batches already in the accumulated gradients.
        self.masked_frames_in_step = 0.0

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """speech: [batch, samples] (unpadded crops); speech_lengths: [batch].

        ``kwargs`` absorbs ``utt_id``, which the Trainer adds to every batch.
        """
        accumulating = self.training and torch.is_grad_enabled()
        if accumulating and not any(parameter.grad is not None for parameter in self.parameters()):
            # A new optimizer step begins; if the last one was skipped, forget its codebook statistics.
            self.masked_frames_in_step = 0.0
            self.ssl.discard_accumulated()
        output = self.ssl(speech, speech_lengths, standardized=self.input_standardized)
        stats = {key: float(value) for key, value in output.stats.items()}
        stats["loss"] = float(output.loss.detach())
        if self.training and self.health_monitor is not None:
            self.health_monitor.observe(stats, int(speech_lengths.sum()))
        stats_tensors = {key: torch.tensor(value) for key, value in stats.items()}
        weight = torch.tensor(float(output.num_masked))
        loss = output.loss
        if accumulating:
            loss = self._step_normalized_loss(loss, output.num_masked)
        return force_gatherable((loss, stats_tensors, weight), loss.device)

    @torch.no_grad()
    def _rescale_accumulated_gradients(self, factor: float) -> None:
        for parameter in self.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(factor)

    def _step_normalized_loss(self, mean_loss: torch.Tensor, num_masked: int) -> torch.Tensor:
        """``mean_loss`` (local masked-frame mean) -> the loss to return (module docstring)."""
        frames = torch.tensor(float(num_masked), dtype=torch.float64, device=mean_loss.device)
        micro_batch_frames = float(distributed_sum_(frames))       # W_m
        previous = self.masked_frames_in_step                       # W_1..m-1
        total = previous + micro_batch_frames                       # W_1..m
        self.masked_frames_in_step = total
        if total == 0:
            return mean_loss * 0.0
        if previous > 0:
            self._rescale_accumulated_gradients(previous / total)
        return mean_loss * (self.accum_grad * micro_batch_frames / total)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                      ) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    def on_optimizer_step(self) -> None:
        """Called once per *applied* optimizer step (see ``DinoSRTask.build_optimizers``)."""
        self.masked_frames_in_step = 0.0
        self.ssl.on_optimizer_step()
        if self.health_monitor is not None:
            self.health_monitor.on_optimizer_step(getattr(self.ssl, "num_updates", None))
