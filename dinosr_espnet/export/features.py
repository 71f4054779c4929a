"""Batched layer features and discrete units of a pre-trained DinoSR / data2vec model.

Frame geometry: the front end's stride and window (``frame_geometry``; the CNN of Base and tiny: 320 and
400 samples at 16 kHz, so 50 frames per second; frame t covers samples [320 t, 320 t + 400) and an
utterance of N samples has T = (N - 400) // 320 + 1 frames, 0 below 400 samples; the demo's log-mel front
end with ``fbank_time_strides: [2, 2]``: stride 640, 25 Hz). Every output has T rows.

What can be extracted (layers are 1-based Transformer layers, 0 = the Transformer input):

- ``layer<l>``: the hidden state after layer l (after its final LayerNorm; ``transformers``'
  ``hidden_states[l]``), ``[frame, dim]`` float32, of the student (default) or the EMA teacher;
- ``codebook_units_layer<l>``: nearest codeword of layer l's codebook to the instance-normalised teacher
  target of layer l, ``[frame]`` int32: exactly the assignment of pre-training (``teacher.layer_targets``
  then ``codebooks.assign``), here on unmasked audio;
- ``head_units_layer<l>``: argmax of the student's prediction head for layer l's codebook on the student's
  last layer, ``[frame]`` int32.

Utterances are batched by length (longest first) and padded; the encoder's padding handling makes a
padded utterance's outputs equal to those of the utterance alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from dinosr_espnet.analysis.unit_extraction import target_layer_numbers
from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.teacher import EMATeacher
from dinosr_espnet.nets.transformer import TransformerEncoder

UNIT_KINDS = ("codebook", "head")
ENCODERS = ("student", "teacher")


class FeatureRequestError(ValueError):
    """An extraction request the model cannot serve (unknown layer, units of a model without codebooks)."""


@dataclass(frozen=True)
class FrameGeometry:
    stride: int            # samples between frame starts (CNN: 320)
    receptive_field: int   # samples one frame sees (400)
    sample_rate: int = 16000

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.stride

    def to_dict(self) -> Dict[str, float]:
        return {"sample_rate": self.sample_rate, "stride_samples": self.stride,
                "receptive_field_samples": self.receptive_field, "frame_rate_hz": self.frame_rate,
                "frame_t_covers_samples": f"[{self.stride} t, {self.stride} t + {self.receptive_field})",
                "num_frames": f"(N - {self.receptive_field}) // {self.stride} + 1"}


def frame_geometry(config: DinoSRConfig) -> FrameGeometry:
    """Stride and window of the model's front end (``DinoSRConfig.frame_window_and_stride``)."""
    window, stride = config.frame_window_and_stride
    return FrameGeometry(stride=stride, receptive_field=window)


@dataclass(frozen=True)
class FeatureRequest:
    layers: Tuple[int, ...] = ()                     # hidden states to write (0..L)
    units: Tuple[str, ...] = ()                      # subset of UNIT_KINDS
    unit_layers: Tuple[int, ...] = ()                # target layers whose units to write (empty = all)
    encoder: str = "student"                         # whose hidden states: student or teacher

    def output_names(self, unit_layers: Sequence[int]) -> List[str]:
        names = [f"layer{layer}" for layer in self.layers]
        for kind in self.units:
            names += [f"{kind}_units_layer{layer}" for layer in unit_layers]
        return names


class BatchFeatureExtractor:
    """Runs a pre-trained ``DinoSRModel`` / ``Data2VecModel`` on padded batches of waveforms."""

    def __init__(self, model: nn.Module, request: FeatureRequest, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.request = request
        config = model.config
        self.num_layers = config.encoder_layers
        self.geometry = frame_geometry(config)
        if request.encoder not in ENCODERS:
            raise FeatureRequestError(f"--encoder must be one of {ENCODERS}, not {request.encoder!r}")
        unknown = [layer for layer in request.layers if not 0 <= layer <= self.num_layers]
        if unknown:
            raise FeatureRequestError(f"--layers: no layer {unknown[0]}; this model has layers 0..{self.num_layers} "
                                      f"(0 = Transformer input, {self.num_layers} = last layer)")
        bad_kinds = [kind for kind in request.units if kind not in UNIT_KINDS]
        if bad_kinds:
            raise FeatureRequestError(f"--units: unknown kind {bad_kinds[0]!r}; choose from {UNIT_KINDS}")
        self.target_layers = target_layer_numbers(model)
        self.unit_layers = list(request.unit_layers) or list(self.target_layers)
        if request.units:
            if not (hasattr(model, "codebooks") and hasattr(model, "heads")):
                raise FeatureRequestError(f"--units {','.join(request.units)}: a {type(model).__name__} has no "
                                          f"codebooks or heads (only DinoSR models give units)")
            missing = [layer for layer in self.unit_layers if layer not in self.target_layers]
            if missing:
                raise FeatureRequestError(f"--unit_layers: layer {missing[0]} has no codebook; the target layers "
                                          f"are {self.target_layers}")
        if not request.layers and not request.units:
            raise FeatureRequestError("nothing to extract: give --layers and/or --units")
        self.codebook_indices = [self.target_layers.index(layer) for layer in self.unit_layers]

    @property
    def output_names(self) -> List[str]:
        return self.request.output_names(self.unit_layers)

    @torch.no_grad()
    def __call__(self, waveforms: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        """Per utterance ``{output name: array}`` (rows = that utterance's valid frames)."""
        lengths = torch.tensor([len(waveform) for waveform in waveforms], dtype=torch.long)
        batch = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
        for row, waveform in enumerate(waveforms):
            batch[row, :len(waveform)] = torch.from_numpy(np.asarray(waveform, dtype=np.float32))
        batch, lengths = batch.to(self.device), lengths.to(self.device)
        student = self.model.student
        front = student.extract_features(batch, lengths)  # [batch, frame, dim], padded frames zeroed
        frame_lengths = front.lengths.tolist()
        outputs: Dict[str, Tensor] = {}
        final = None
        if self.request.layers:
            encoder = student.encoder if self.request.encoder == "student" else self.model.teacher.encoder
            final, hidden = hidden_states(encoder, front.features, front.padding_mask, self.request.layers)
            outputs.update({f"layer{layer}": value for layer, value in hidden.items()})
        if "codebook" in self.request.units:
            teacher: EMATeacher = self.model.teacher
            targets = teacher.layer_targets(front.features, front.padding_mask, len(self.target_layers))
            valid = _valid_frames(front.padding_mask, front.features.shape[:2], front.features.device)
            # every codebook, as pre-training does: [K, N valid frames, D] -> [K, N]
            assigned = self.model.codebooks.assign(torch.stack([target[valid] for target in targets]))
            for index, layer in zip(self.codebook_indices, self.unit_layers):
                outputs[f"codebook_units_layer{layer}"] = _scatter(assigned[index], valid)
        if "head" in self.request.units:
            if final is None or self.request.encoder != "student":
                final, _ = student.encoder(front.features, front.padding_mask)
            for index, layer in zip(self.codebook_indices, self.unit_layers):
                outputs[f"head_units_layer{layer}"] = self.model.heads[index](final.float()).argmax(dim=-1)
        results = []
        for row, frames in enumerate(frame_lengths):
            item = {}
            for name in self.output_names:
                value = outputs[name][row, :frames]
                item[name] = (value.float().cpu().numpy() if value.is_floating_point()
                              else value.to(torch.int32).cpu().numpy())
            results.append(item)
        return results


def hidden_states(encoder: TransformerEncoder, features: Tensor, padding_mask, layers: Sequence[int]
                  ) -> Tuple[Tensor, Dict[int, Tensor]]:
    """Run ``encoder`` on ``features`` ``[batch, frame, dim]``; return (last output, {layer: hidden state}).

    Layer 0 is the input of the first layer (after the positional convolution and LayerNorm), layer l the
    output of layer l, both ``[batch, frame, dim]`` (the encoder's internal length padding cut off).
    """
    frames = features.size(1)
    captured: Dict[int, Tensor] = {}
    handles = []
    if 0 in layers:
        handles.append(encoder.layers[0].register_forward_pre_hook(
            lambda module, args: captured.__setitem__(0, args[0][:, :frames])))
    for layer in sorted(set(layers) - {0}):
        handles.append(encoder.layers[layer - 1].register_forward_hook(
            lambda module, args, output, layer=layer: captured.__setitem__(layer, output[0][:, :frames])))
    try:
        final, _ = encoder(features, padding_mask)
    finally:
        for handle in handles:
            handle.remove()
    return final, captured


def _valid_frames(padding_mask, shape, device) -> Tensor:
    if padding_mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return ~padding_mask


def _scatter(values: Tensor, valid: Tensor) -> Tensor:
    """Flat per-valid-frame ``values`` ``[N]`` back to ``[batch, frame]`` (padded frames -1)."""
    full = torch.full(valid.shape, -1, dtype=values.dtype, device=values.device)
    full[valid.to(values.device)] = values
    return full
