"""What DinoSR and data2vec share: student, EMA teacher, span masking, update counter and the 200k freeze."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from dinosr_espnet.nets.compilation import compile_encoders
from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.masking import compute_span_mask
from dinosr_espnet.nets.speech_encoder import SpeechEncoder, SpeechEncoderOutput, lengths_to_padding_mask
from dinosr_espnet.nets.teacher import EMATeacher, annealed_ema_decay


@dataclass
class SSLOutput:
    """Result of a pre-training forward pass."""

    loss: Tensor                              # [] mean over masked frames (and heads), differentiable
    num_masked: int                           # masked frames in this (local) batch
    stats: Dict[str, float] = field(default_factory=dict)


class SelfDistillationModel(nn.Module):
    """Student ``SpeechEncoder`` + EMA teacher of its Transformer (+ the shared bookkeeping).

    Subclasses implement ``compute_loss``. ``freezes_teacher`` says whether the teacher and the
    student's front end freeze at ``config.freeze_teacher_step`` (DinoSR: yes; data2vec: no).
    """

    freezes_teacher = True

    def __init__(self, config: DinoSRConfig) -> None:
        super().__init__()
        self.config = config
        self.student = SpeechEncoder(config)
        # Teacher == student at step 0 (fairseq deep-copies the freshly initialised encoder).
        self.teacher = EMATeacher(self.student.encoder)
        compile_encoders(self, config)  # after the teacher copy (config.compile; off: eager)
        self.register_buffer("num_updates_buffer", torch.zeros((), dtype=torch.long))
        self._front_end_snapshot: Optional[Dict[str, Tensor]] = None

    # --- update bookkeeping ------------------------------------------------------------------
    @property
    def num_updates(self) -> int:
        """Optimizer steps taken so far (checkpointed as the buffer ``num_updates_buffer``)."""
        return int(self.num_updates_buffer)

    @property
    def teacher_frozen(self) -> bool:
        return self.freezes_teacher and self.num_updates >= self.config.freeze_teacher_step

    def ema_decay(self) -> float:
        """Teacher decay that the EMA step at the current ``num_updates`` uses (1.0 = frozen)."""
        config = self.config
        freeze_step = config.freeze_teacher_step if self.freezes_teacher else None
        return annealed_ema_decay(self.num_updates, config.ema_decay, config.ema_end_decay,
                                  config.ema_anneal_end_step, freeze_step)

    @torch.no_grad()
    def on_optimizer_step(self) -> None:
        """Call once per optimizer step (after ``optimizer.step()``), not per forward.

        fairseq steps the teacher before every forward (``set_num_updates``), so with gradient
        accumulation its teacher decays once per micro-batch. We deliberately step once per optimizer
        step, so that accumulating ``x`` micro-batches emulates ``x`` times more GPUs exactly
        (spec pitfall 2), together with the codebook statistics summed over the step (``DinoSRModel``)
        and the loss weighted by masked frames over the step (``tasks/pretrain_model.py``).
        Steps: ``num_updates += 1``; EMA step of the teacher with the decay for the new count
        (skipped when it is 1); from ``freeze_teacher_step`` on, the CNN, its LayerNorm and the
        projection are frozen (run without gradient, and restored to their value at the freeze).
        """
        self.num_updates_buffer += 1
        decay = self.ema_decay()
        if decay < 1.0:
            self.teacher.step(self.student.encoder, decay)
        if self.teacher_frozen:
            self._freeze_front_end()

    def discard_accumulated(self) -> None:
        """Forget what the micro-batches since the last optimizer step accumulated outside the
        gradients (the step was skipped); nothing here, DinoSR's codebook statistics."""

    def _front_end_modules(self) -> List[Tuple[str, nn.Module]]:
        return [("feature_extractor", self.student.feature_extractor), ("layer_norm", self.student.layer_norm),
                ("post_extract_proj", self.student.post_extract_proj)]

    @torch.no_grad()
    def _freeze_front_end(self) -> None:
        """Front end fixed from here on: snapshot once, afterwards undo any change (e.g. weight decay)."""
        self.student.freeze_front_end = True
        state = {f"{prefix}.{name}": tensor for prefix, module in self._front_end_modules()
                 for name, tensor in module.state_dict(keep_vars=True).items()}
        if self._front_end_snapshot is None:
            self._front_end_snapshot = {name: tensor.detach().clone() for name, tensor in state.items()}
        else:
            for name, tensor in state.items():
                tensor.data.copy_(self._front_end_snapshot[name])

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # A loaded state replaces the front end: take a fresh snapshot at the next freeze check.
        self._front_end_snapshot = None
        self.student.freeze_front_end = False
        super()._load_from_state_dict(*args, **kwargs)

    def train(self, mode: bool = True) -> "SelfDistillationModel":
        super().train(mode)
        self.teacher.train(mode)  # keeps its encoder in eval mode
        return self

    # --- forward -----------------------------------------------------------------------------
    def sample_time_mask(self, batch: int, frames: int, padding_mask: Optional[Tensor]) -> Tensor:
        """Span mask ``[batch, frame]`` with the configured probability and length."""
        config = self.config
        return compute_span_mask(batch, frames, None if padding_mask is None else padding_mask.cpu(),
                                 config.mask_prob, config.mask_length, min_masks=config.mask_min_masks,
                                 require_same_masks=config.require_same_masks)

    def encode(self, waveform: Tensor, lengths: Tensor, standardized: bool = False
               ) -> Tuple[SpeechEncoderOutput, Tensor, List[Tensor]]:
        """Student on the masked input, teacher on the unmasked features.

        ``standardized``: the waveform is already standardised per utterance (``SpeechEncoder.extract_features``).

        Returns (student output, time mask ``[batch, frame]``, K instance-normed teacher layer targets
        ``[batch, frame, dim]`` each).
        """
        if self.teacher_frozen and not self.student.freeze_front_end:
            self._freeze_front_end()  # e.g. resumed after the freeze step
        lengths = lengths.to(waveform.device)
        frames = self.student.num_frames(waveform.size(1))
        padding_mask = lengths_to_padding_mask(self.student.output_lengths(lengths), frames)
        time_mask = self.sample_time_mask(waveform.size(0), frames, padding_mask).to(waveform.device)
        student_output = self.student(waveform, lengths, time_mask=time_mask, standardized=standardized)
        targets = self.teacher.layer_targets(student_output.features, student_output.padding_mask,
                                             self.config.average_top_k_layers)
        return student_output, time_mask, targets

    def forward(self, waveform: Tensor, lengths: Tensor, standardized: bool = False) -> SSLOutput:
        """``waveform`` ``[batch, samples]``, ``lengths`` ``[batch]`` valid samples; ``standardized``: see ``encode``."""
        student_output, time_mask, targets = self.encode(waveform, lengths, standardized=standardized)
        output = self.compute_loss(student_output, time_mask, targets)
        output.stats.update(ema_decay=self.ema_decay(), num_updates=float(self.num_updates),
                            num_masked=float(output.num_masked))
        return output

    def compute_loss(self, student_output: SpeechEncoderOutput, time_mask: Tensor,
                     targets: List[Tensor]) -> SSLOutput:
        raise NotImplementedError
