"""The DinoSR student: waveform -> CNN (or log-mel front end) -> LayerNorm(C) -> Linear(C, D) -> [mask] -> Transformer."""
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor, nn

from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.fbank_frontend import FbankFrontEnd
from dinosr_espnet.nets.feature_extractor import FeatureExtractor, Fp32LayerNorm
from dinosr_espnet.nets.transformer import TransformerEncoder


@dataclass
class SpeechEncoderOutput:
    """What ``SpeechEncoder.forward`` returns (T = frames, D = model dim)."""

    x: Tensor                                 # [batch, frame, dim] last layer output (after its LayerNorm)
    lengths: Tensor                           # [batch] valid frames
    padding_mask: Optional[Tensor]            # [batch, frame] True = padded; None when nothing is padded
    features: Tensor                          # [batch, frame, dim] projected CNN features (teacher input)
    layer_results: Optional[List[Tensor]]     # per layer [batch, frame, dim]: FFN output before residual


class _GradMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


def standardize_waveform(waveform: Tensor, lengths: Tensor) -> Tensor:
    """Per-utterance zero mean / unit variance over valid samples (eps 1e-5, as ``F.layer_norm``); pads -> 0.

    ``waveform`` ``[batch, samples]``, ``lengths`` ``[batch]``.
    """
    waveform = waveform.float()
    valid = torch.arange(waveform.size(1), device=waveform.device)[None, :] < lengths[:, None]
    count = lengths.clamp(min=1).to(waveform.dtype)[:, None]
    mean = (waveform * valid).sum(dim=1, keepdim=True) / count
    centered = (waveform - mean) * valid
    variance = centered.pow(2).sum(dim=1, keepdim=True) / count
    return centered / torch.sqrt(variance + 1e-5)


def lengths_to_padding_mask(lengths: Tensor, frames: int) -> Optional[Tensor]:
    """``[batch, frames]`` True = padded, or None when every utterance fills all frames."""
    mask = torch.arange(frames, device=lengths.device)[None, :] >= lengths[:, None]
    return mask if bool(mask.any()) else None


def build_front_end(config: DinoSRConfig) -> nn.Module:
    """The raw-waveform CNN (official) or the log-mel front end: ``[batch, samples] -> [batch, frame, C]``."""
    if config.frontend == "fbank":
        return FbankFrontEnd(config.fbank_num_mels, config.fbank_channels, config.fbank_time_strides)
    return FeatureExtractor(config.conv_feature_layers, bias=config.conv_bias)


class SpeechEncoder(nn.Module):
    """Student encoder (the part fine-tuned for ASR).

    Attributes: ``feature_extractor``, ``layer_norm``, ``post_extract_proj``, ``mask_emb`` (Parameter[D]),
    ``encoder`` (``TransformerEncoder``), ``dropout_input``.
    """

    def __init__(self, config: DinoSRConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.encoder_embed_dim
        self.feature_extractor = build_front_end(config)
        self.layer_norm = Fp32LayerNorm(config.feature_dim)
        self.post_extract_proj = nn.Linear(config.feature_dim, dim)
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.mask_emb = nn.Parameter(torch.empty(dim).uniform_())
        self.encoder = TransformerEncoder(
            dim=dim, num_layers=config.encoder_layers, num_heads=config.encoder_attention_heads,
            ffn_dim=config.encoder_ffn_embed_dim, dropout=config.dropout,
            attention_dropout=config.attention_dropout, activation_dropout=config.activation_dropout,
            layer_drop=config.encoder_layerdrop, conv_pos=config.conv_pos,
            conv_pos_groups=config.conv_pos_groups, pos_conv_depth=config.pos_conv_depth,
            required_seq_len_multiple=config.required_seq_len_multiple,
            layer_norm_first=config.layer_norm_first)
        self.feature_grad_mult = config.feature_grad_mult
        # Set by DinoSRModel after the teacher freeze: the CNN, its LayerNorm and projection run without grad.
        self.freeze_front_end = False

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Frames for ``lengths`` samples ``[batch]`` (Base: (N - 400) // 320 + 1)."""
        return self.feature_extractor.output_lengths(lengths)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a (padded) waveform of ``num_samples`` samples."""
        return int(self.output_lengths(torch.tensor([num_samples]))[0])

    def extract_features(self, waveform: Tensor, lengths: Tensor, standardized: bool = False) -> SpeechEncoderOutput:
        """CNN front end only: ``features`` ``[batch, frame, dim]`` (padded frames zeroed), lengths, padding mask.

        ``standardized``: the caller already standardised each utterance (pre-training: over the whole
        utterance before cropping, ``tasks/collate.py``), so ``normalize_waveform`` is not applied again.
        """
        if self.config.normalize_waveform and not standardized:
            waveform = standardize_waveform(waveform, lengths)
        else:
            valid = torch.arange(waveform.size(1), device=waveform.device)[None, :] < lengths[:, None]
            waveform = waveform * valid
        # After the teacher freeze the whole front end runs without gradient (frozen, as in fairseq).
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_front_end):
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.feature_grad_mult > 0):
                features = self.feature_extractor(waveform, lengths)
            if features.requires_grad and self.feature_grad_mult != 1.0:
                features = _GradMultiply.apply(features, self.feature_grad_mult)
            features = self.post_extract_proj(self.layer_norm(features))
        frame_lengths = self.output_lengths(lengths)
        padding_mask = lengths_to_padding_mask(frame_lengths, features.size(1))
        if padding_mask is not None:
            features = features.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return SpeechEncoderOutput(x=features, lengths=frame_lengths, padding_mask=padding_mask,
                                   features=features, layer_results=None)

    def forward(self, waveform: Tensor, lengths: Tensor, time_mask: Optional[Tensor] = None,
                channel_mask: Optional[Tensor] = None, output_layer_results: bool = False,
                min_layer: int = 0, standardized: bool = False) -> SpeechEncoderOutput:
        """Encode ``waveform`` ``[batch, samples]`` with ``lengths`` ``[batch]`` valid samples.

        ``time_mask`` ``[batch, frame]``: True frames are replaced by ``mask_emb``.
        ``channel_mask`` ``[batch, dim]``: True channels are zeroed (fine-tuning augmentation).
        ``output_layer_results``: also return every layer's FFN output (from ``min_layer`` on).
        ``standardized``: see ``extract_features``.
        """
        front = self.extract_features(waveform, lengths, standardized=standardized)
        x = self.dropout_input(front.features)
        if time_mask is not None:
            if time_mask.shape != x.shape[:2]:
                raise ValueError(f"time_mask has shape {tuple(time_mask.shape)}, expected {tuple(x.shape[:2])}")
            x = torch.where(time_mask.to(x.device).unsqueeze(-1), self.mask_emb.to(x.dtype), x)
        if channel_mask is not None:
            x = x.masked_fill(channel_mask.to(x.device).unsqueeze(1), 0.0)
        x, layer_results = self.encoder(x, front.padding_mask, min_layer=min_layer,
                                        output_layer_results=output_layer_results)
        return SpeechEncoderOutput(x=x, lengths=front.lengths, padding_mask=front.padding_mask,
                                   features=front.features, layer_results=layer_results)
