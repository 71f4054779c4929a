"""Discrete units of a DinoSR model for one utterance: online codebooks, student heads, teacher targets.

For codebook k (teacher layer L - K + k + 1, 1-based, of an L-layer encoder with K target layers):

- codebook units: nearest codeword of codebook k to the instance-normalised teacher target of that layer
  (exactly the assignment that makes the pre-training targets, here on the unmasked input);
- head units: argmax of head k on the student's final output, unmasked input, eval mode
  (what SpidR calls ``get_codebooks``);
- the instance-normalised teacher target itself, on which the offline k-means baseline is fitted, so that the
  k-means and the online codebook cluster exactly the same vectors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn


@dataclass
class UtteranceUnits:
    codebook_units: Optional[Tensor]  # [K, frame] long; None for a model without codebooks (data2vec)
    head_units: Optional[Tensor]  # [K, frame] long; None without heads
    targets: Tensor  # [K, frame, dim] fp32, instance-normalised teacher layer results


def target_layer_numbers(model: nn.Module) -> List[int]:
    """1-based Transformer layer number of each codebook (Base: 5..12)."""
    config = model.config
    first = config.encoder_layers - config.average_top_k_layers + 1
    return list(range(first, config.encoder_layers + 1))


def _teacher_targets(model: nn.Module, features: Tensor, top_k: int) -> List[Tensor]:
    """Instance-normalised FFN outputs of the top ``top_k`` teacher layers, each ``[batch, frame, dim]``."""
    teacher = model.teacher
    if hasattr(teacher, "layer_targets"):
        return teacher.layer_targets(features, None, top_k)
    from dinosr_espnet.nets.teacher import masked_instance_norm  # a bare encoder as teacher

    encoder = getattr(teacher, "encoder", teacher)
    _, layer_results = encoder(features, None, min_layer=len(encoder.layers) - top_k, output_layer_results=True)
    return [masked_instance_norm(result, None) for result in layer_results]


class UnitExtractor:
    """Runs ``model`` (a ``DinoSRModel``: ``student``, ``teacher``, ``codebooks``, ``heads``) on one utterance.

    A model with a student and teacher but no codebooks/heads (``Data2VecModel``) gives teacher targets only,
    for the k-means baseline.
    """

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.layers = target_layer_numbers(model)
        self.has_codebooks = hasattr(model, "codebooks") and hasattr(model, "heads")

    def codebook_indices(self, layers: Sequence[int]) -> List[int]:
        """0-based codebook index of each 1-based layer number; ValueError for a non-target layer."""
        unknown = [layer for layer in layers if layer not in self.layers]
        if unknown:
            raise ValueError(f"layers {unknown} have no codebook; the target layers are {self.layers}")
        return [self.layers.index(layer) for layer in layers]

    @torch.no_grad()
    def __call__(self, waveform: Tensor) -> UtteranceUnits:
        """``waveform`` ``[samples]`` (16 kHz, raw: the model standardises it) -> units of every codebook."""
        waveform = waveform.to(self.device, torch.float32).unsqueeze(0)
        lengths = torch.tensor([waveform.size(1)], device=self.device)
        student = self.model.student
        output = student(waveform, lengths)
        top_k = len(self.layers)
        targets = torch.stack([target[0] for target in _teacher_targets(self.model, output.features, top_k)])
        if not self.has_codebooks:
            return UtteranceUnits(codebook_units=None, head_units=None, targets=targets.cpu())
        codebook_units = self.model.codebooks.assign(targets)
        final = output.x[0].float()
        head_units = torch.stack([head(final).argmax(dim=-1) for head in self.model.heads])
        return UtteranceUnits(codebook_units=codebook_units.cpu(), head_units=head_units.cpu(),
                              targets=targets.cpu())
