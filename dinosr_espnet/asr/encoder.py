"""``encoder: dinosr``: the DinoSR student as an ESPnet ASR encoder for CTC fine-tuning.

Faithful to fairseq's ``wav2vec_ctc`` fine-tuning of DinoSR (dinosr_spec.md section 3):

- raw 16 kHz waveforms in (ESPnet ``frontend: none``, ``input_size: 1``, ``normalize: null``);
  the student standardises each utterance over its valid samples (``task.normalize: true``);
- the CNN is frozen (``feature_grad_mult 0``: its parameters never receive a gradient); LayerNorm,
  projection, ``mask_emb`` and the Transformer train;
- for the first ``freeze_finetune_updates`` optimizer updates the whole student runs under
  ``no_grad``, so only ESPnet's CTC output layer trains. Updates are counted by an optimizer
  step hook (``update_counter.py``), not by forwards, so gradient accumulation, validation and
  skipped steps do not shift the schedule; the count is a buffer and survives ``--resume``;
- in training mode only: time masking (spans of ``mask_length`` frames with start probability
  ``mask_prob``, replaced by the learned ``mask_emb``, ``min_masks`` 1 as DinoSR's ``apply_mask``)
  and channel masking (spans of ``mask_channel_length`` channels zeroed for the whole utterance,
  fairseq's ``min_masks`` 0), then LayerDrop and dropouts as configured.

The architecture comes from the pre-trained model's ``model_conf`` (``pretrained_config``, or the
``config.yaml`` beside ``pretrained_model``), overridden by ``model_conf`` / architecture keywords
given in ``encoder_conf``; without a ``pretrained_model`` (or with ``load_pretrained_weights:
false``) the student is randomly initialised: the ``scratch`` baseline, for which
``freeze_feature_extractor: false`` keeps the comparison fair (a CNN frozen at random init would
handicap it).

A fine-tuned model is self-contained: ``bin.asr_train --pretrained_model PATH`` (``asr/task.py``)
reads the pre-trained weights when fine-tuning starts and records the pre-trained model's
``model_conf`` as ``encoder_conf.pretrained_config`` in the run's ``config.yaml``, without the path,
so building the encoder from that ``config.yaml`` (decoding) reads no pre-training file: its
weights come from the fine-tuned state dict.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import fields
from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from dinosr_espnet.asr.pretrained import load_student_weights, read_pretraining_config
from dinosr_espnet.asr.update_counter import count_optimizer_updates

# nets/ is imported when an encoder is built, not when ESPnet imports this module through the
# registration hook: `--help` and every other encoder keep working whatever state nets/ is in.


def _finetune_config(pretrained_model: Optional[str], pretrained_config: Optional[Dict[str, Any]],
                     model_conf: Dict[str, Any], finetune_values: Dict[str, Any]) -> "DinoSRConfig":
    """pre-trained model_conf < model_conf (architecture) < fine-tuning regularisation."""
    from dinosr_espnet.nets.config import DinoSRConfig

    overridden = sorted(key for key in set(model_conf) & set(finetune_values)
                        if model_conf[key] != finetune_values[key])
    if overridden:
        # e.g. a pre-training model_conf copied whole: its dropout/mask values are pre-training ones
        logging.warning(f"encoder_conf model_conf values of {overridden} are replaced by the fine-tuning "
                        f"keywords of encoder_conf (set those directly in encoder_conf)")
    if pretrained_config is not None:
        checkpoint_conf = dict(pretrained_config)
    else:
        checkpoint_conf = read_pretraining_config(pretrained_model) if pretrained_model else {}
    known = {item.name for item in fields(DinoSRConfig)}
    # a pre-training config may carry fields a newer/older DinoSRConfig lacks: keep the known ones
    ignored = sorted(set(checkpoint_conf) - known)
    if ignored:
        logging.warning(f"{pretrained_model or 'pretrained_config'}: model_conf keys not used by the encoder: "
                        f"{ignored}")
    values = {key: value for key, value in checkpoint_conf.items() if key in known}
    values.update(model_conf)
    values.update(finetune_values)
    if "average_top_k_layers" not in values:
        # a pre-training-only field the encoder ignores; keep it valid for a shallow inline architecture
        default = DinoSRConfig()
        values["average_top_k_layers"] = min(default.average_top_k_layers,
                                             values.get("encoder_layers", default.encoder_layers))
    return DinoSRConfig.from_dict(values)


class DinoSREncoder(AbsEncoder):
    """DinoSR student for ESPnet ``ASRTask``: ``[batch, sample]`` waveforms -> ``[batch, frame, dim]``.

    Args:
        input_size: ESPnet's feature size; must be 1 (raw waveform, ``frontend: none``).
        pretrained_model: ``model.pth`` of a pre-training run (``config.yaml`` beside it), or None
            for random initialisation.
        pretrained_config: the pre-trained model's ``model_conf`` (``DinoSRConfig`` fields); given,
            ``config.yaml`` beside ``pretrained_model`` is not read (recorded by ``bin.asr_train``).
        load_pretrained_weights: False takes only the architecture from ``pretrained_model``'s
            config.yaml and keeps the random initialisation (a scratch baseline of the same shape).
        model_conf: ``DinoSRConfig`` architecture overrides (also accepted as plain keywords).
        freeze_feature_extractor: True = CNN frozen (fairseq ``feature_grad_mult: 0``); False trains it.
        freeze_finetune_updates: optimizer updates during which only the CTC output layer trains.
        mask_prob, mask_length, mask_min_masks: time masking in training (fairseq fine-tuning).
        mask_channel_prob, mask_channel_length: channel masking in training (0 disables).
        dropout, attention_dropout, activation_dropout, encoder_layerdrop, dropout_input:
            fine-tuning regularisation (fairseq ``Wav2Vec2AsrConfig`` defaults; LayerDrop per split).
    """

    def __init__(
        self,
        input_size: int = 1,
        pretrained_model: Optional[str] = None,
        pretrained_config: Optional[Dict[str, Any]] = None,
        load_pretrained_weights: bool = True,
        model_conf: Optional[Dict[str, Any]] = None,
        freeze_feature_extractor: bool = True,
        freeze_finetune_updates: int = 0,
        mask_prob: float = 0.65,
        mask_length: int = 10,
        mask_min_masks: int = 1,
        mask_channel_prob: float = 0.0,
        mask_channel_length: int = 64,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.1,
        encoder_layerdrop: float = 0.0,
        dropout_input: float = 0.0,
        **architecture: Any,
    ):
        super().__init__()
        if input_size != 1:
            raise ValueError(f"DinoSREncoder reads raw waveforms: use frontend: none and input_size: 1 "
                             f"(got input_size {input_size})")
        model_conf = dict(model_conf or {})
        duplicated = sorted(set(model_conf) & set(architecture))
        if duplicated:
            raise ValueError(f"encoder_conf gives {duplicated} both inside model_conf and directly")
        model_conf.update(architecture)
        finetune_values = dict(
            dropout=dropout, attention_dropout=attention_dropout, activation_dropout=activation_dropout,
            encoder_layerdrop=encoder_layerdrop, dropout_input=dropout_input,
            feature_grad_mult=0.0 if freeze_feature_extractor else 1.0,
            mask_prob=mask_prob, mask_length=mask_length, mask_min_masks=mask_min_masks,
            require_same_masks=True)
        if pretrained_model is not None and not isinstance(pretrained_model, (str, os.PathLike)):
            raise ValueError(f"encoder_conf pretrained_model must be a path, got {type(pretrained_model).__name__} "
                             f"{pretrained_model!r} (--encoder_conf parses its value as YAML: give the path with "
                             f"bin.asr_train --pretrained_model instead)")
        self.config = _finetune_config(pretrained_model, pretrained_config, model_conf, finetune_values)
        from dinosr_espnet.nets.speech_encoder import SpeechEncoder

        self.student = SpeechEncoder(self.config)
        if pretrained_model and load_pretrained_weights:
            load_student_weights(self.student, pretrained_model)
            logging.info(f"DinoSREncoder: student weights loaded from {pretrained_model}")
        self.freeze_feature_extractor = freeze_feature_extractor
        if freeze_feature_extractor:
            # no parameter of the CNN ever gets a gradient (and DDP does not wait for one)
            self.student.feature_extractor.requires_grad_(False)
        from dinosr_espnet.nets.compilation import compile_encoders

        compile_encoders(self.student, self.config)  # model_conf compile: true (default false: eager)
        self.freeze_finetune_updates = int(freeze_finetune_updates)
        self.mask_prob = float(mask_prob)
        self.mask_length = int(mask_length)
        self.mask_min_masks = int(mask_min_masks)
        self.mask_channel_prob = float(mask_channel_prob)
        self.mask_channel_length = int(mask_channel_length)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        count_optimizer_updates(self)

    def output_size(self) -> int:
        return self.config.encoder_embed_dim

    def set_num_updates(self, num_updates: int) -> None:
        """Set the update count (normally maintained by the optimizer step hook)."""
        self.num_updates.fill_(int(num_updates))

    @property
    def transformer_frozen(self) -> bool:
        """True while fewer than ``freeze_finetune_updates`` updates have been made."""
        return int(self.num_updates) < self.freeze_finetune_updates

    def _masks(self, batch: int, frames: int, padding_mask: Optional[torch.Tensor],
               device: torch.device) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Time mask ``[batch, frame]`` and channel mask ``[batch, dim]`` (None when disabled)."""
        from dinosr_espnet.nets.masking import compute_span_mask

        time_mask = channel_mask = None
        if self.mask_prob > 0:
            time_mask = compute_span_mask(batch, frames, padding_mask, self.mask_prob, self.mask_length,
                                          min_masks=self.mask_min_masks, require_same_masks=True).to(device)
        if self.mask_channel_prob > 0:
            channel_mask = compute_span_mask(batch, self.config.encoder_embed_dim, None, self.mask_channel_prob,
                                             self.mask_channel_length, min_masks=0,
                                             require_same_masks=True).to(device)
        return time_mask, channel_mask

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor,
                prev_states: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``xs_pad [batch, sample]`` (or ``[batch, sample, 1]``), ``ilens [batch]`` ->
        ``(x [batch, frame, dim], olens [batch], None)``; frames past ``olens`` are padding."""
        count_optimizer_updates(self)  # idempotent; covers copies made after __init__
        if xs_pad.dim() == 3:
            if xs_pad.size(-1) != 1:
                raise ValueError(f"DinoSREncoder expects mono waveforms, got input of shape {tuple(xs_pad.shape)}")
            xs_pad = xs_pad.squeeze(-1)
        ilens = ilens.to(xs_pad.device)
        time_mask = channel_mask = None
        if self.training:
            olens = self.student.output_lengths(ilens)
            frames = int(self.student.output_lengths(ilens.new_tensor([xs_pad.size(1)]))[0])
            positions = torch.arange(frames, device=xs_pad.device)
            padding_mask = positions[None, :] >= olens[:, None]
            time_mask, channel_mask = self._masks(
                xs_pad.size(0), frames, padding_mask if bool(padding_mask.any()) else None, xs_pad.device)
        frozen = self.transformer_frozen
        with torch.no_grad() if frozen else contextlib.nullcontext():
            output = self.student(xs_pad, ilens, time_mask=time_mask, channel_mask=channel_mask)
        x, olens = output.x, output.lengths
        x = x[:, : int(olens.max())]  # ESPnet asserts frames <= max(olens)
        return x, olens, None
