"""EMA teacher over the Transformer encoder (spec 1.4) and its per-layer instance-normalised targets."""
import copy
from typing import List, Optional

import torch
from torch import Tensor, nn

from dinosr_espnet.nets.transformer import TransformerEncoder


def annealed_ema_decay(num_updates: int, start: float, end: float, anneal_steps: int,
                       freeze_step: Optional[int] = None) -> float:
    """Teacher decay after ``num_updates`` optimizer steps: linear ``start -> end`` over ``anneal_steps``,
    ``end`` afterwards, 1.0 (teacher fixed) from ``freeze_step`` on."""
    if freeze_step is not None and num_updates >= freeze_step:
        return 1.0
    if num_updates >= anneal_steps or start == end:
        return end
    return end - (end - start) * (1.0 - num_updates / anneal_steps)


class EMATeacher(nn.Module):
    """A deep copy of the student's ``TransformerEncoder``: no gradient, always in eval mode, fp32.

    ``step(student, decay)``: ``theta <- decay * theta + (1 - decay) * theta_student`` for every parameter,
    except the positional convolution (``pos_conv.*``), which is copied (fairseq ``ema_layers_only``).
    """

    def __init__(self, student_encoder: TransformerEncoder) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(student_encoder).float()
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> "EMATeacher":
        super().train(mode)
        self.encoder.eval()  # the teacher never uses dropout or LayerDrop
        return self

    @torch.no_grad()
    def step(self, student_encoder: TransformerEncoder, decay: float) -> None:
        """One EMA step; the averaged tensors go through ``torch._foreach_*`` (a few kernels for all
        parameters instead of two per tensor), with fairseq's arithmetic ``mul_(decay)`` then
        ``add_(student, alpha=1 - decay)``, so the result is bit-identical to the per-tensor loop
        (``torch._foreach_lerp_`` would round differently)."""
        student = dict(student_encoder.named_parameters())
        averaged, averaged_sources, copied, copied_sources = [], [], [], []
        for name, parameter in self.encoder.named_parameters():
            source = student[name].detach()
            if source.dtype != parameter.dtype:  # the teacher stays fp32
                source = source.float()
            if name.startswith("pos_conv."):
                copied.append(parameter)
                copied_sources.append(source)
            else:
                averaged.append(parameter)
                averaged_sources.append(source)
        if averaged:
            torch._foreach_mul_(averaged, decay)
            torch._foreach_add_(averaged, averaged_sources, alpha=1.0 - decay)
        if copied:
            torch._foreach_copy_(copied, copied_sources)
        student_buffers = dict(student_encoder.named_buffers())
        for name, buffer in self.encoder.named_buffers():
            buffer.copy_(student_buffers[name])

    @torch.no_grad()
    def layer_targets(self, features: Tensor, padding_mask: Optional[Tensor], top_k: int) -> List[Tensor]:
        """FFN outputs (before residual) of the top ``top_k`` layers on the unmasked ``features``
        ``[batch, frame, dim]``, each instance-normalised per utterance and channel in fp32."""
        self.encoder.eval()
        min_layer = len(self.encoder.layers) - top_k
        _, layer_results = self.encoder(features.detach(), padding_mask, min_layer=min_layer,
                                        output_layer_results=True)
        return [masked_instance_norm(result, padding_mask) for result in layer_results]


def masked_instance_norm(x: Tensor, padding_mask: Optional[Tensor], eps: float = 1e-5) -> Tensor:
    """Instance norm over time per utterance and channel in fp32, statistics from valid frames only.

    ``x`` ``[batch, frame, dim]``; ``padding_mask`` ``[batch, frame]`` True = padded (output 0 there).
    Without padding this equals ``F.instance_norm`` on ``[batch, dim, frame]`` (biased variance, eps 1e-5).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        if padding_mask is None:
            mean = x.mean(dim=1, keepdim=True)
            variance = (x - mean).pow(2).mean(dim=1, keepdim=True)
            return (x - mean) / torch.sqrt(variance + eps)
        valid = (~padding_mask).unsqueeze(-1).float()
        count = valid.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = (x * valid).sum(dim=1, keepdim=True) / count
        variance = ((x - mean).pow(2) * valid).sum(dim=1, keepdim=True) / count
        return (x - mean) / torch.sqrt(variance + eps) * valid
