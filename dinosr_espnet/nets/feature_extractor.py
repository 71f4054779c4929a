"""Raw-waveform CNN front end (fairseq ``ConvFeatureExtractionModel``, ``extractor_mode: layer_norm``)."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def receptive_field_and_stride(conv_layers: Sequence[Tuple[int, int, int]]) -> Tuple[int, int]:
    """Samples seen by one output frame and samples between two frames of the CNN
    ``conv_layers`` ((channels, kernel, stride) triples; Base: 400, 320)."""
    receptive_field, stride = 1, 1
    for _, kernel_size, layer_stride in conv_layers:
        receptive_field += (kernel_size - 1) * stride
        stride *= layer_stride
    return receptive_field, stride


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back (keeps the statistics exact under autocast)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            output = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return output.type_as(x)


class ConvLayerBlock(nn.Module):
    """Conv1d (no bias by default) -> LayerNorm over channels (fp32) -> GELU.

    ``[batch, in_channels, samples] -> [batch, out_channels, frames]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        if not self.conv.weight.is_meta:  # (a meta-device model only needs shapes)
            nn.init.kaiming_normal_(self.conv.weight)
        self.layer_norm = Fp32LayerNorm(out_channels, elementwise_affine=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return F.gelu(x)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths - self.kernel_size, self.stride, rounding_mode="floor") + 1


class FeatureExtractor(nn.Module):
    """Stack of ``ConvLayerBlock``: ``[batch, samples] -> [batch, frames, channels]``."""

    def __init__(self, conv_layers: Sequence[Tuple[int, int, int]], bias: bool = False) -> None:
        super().__init__()
        blocks = []
        in_channels = 1
        for out_channels, kernel_size, stride in conv_layers:
            blocks.append(ConvLayerBlock(in_channels, out_channels, kernel_size, stride, bias=bias))
            in_channels = out_channels
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, waveform: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``lengths`` is unused (as in fairseq): the caller zeroes padded samples and masks padded frames."""
        x = waveform.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x.transpose(1, 2)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid frames for ``lengths`` valid samples (Base: (N - 400) // 320 + 1, at least 0)."""
        for block in self.conv_layers:
            lengths = block.output_lengths(lengths)
        return lengths.clamp(min=0)
