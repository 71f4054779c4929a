"""Post-LN Transformer encoder with the multi-block convolutional positional embedding.

Layout and semantics follow fairseq's ``TransformerEncoder`` (``layer_norm_first False``,
``pos_conv_depth > 1``), with two deliberate padding improvements (spec pitfall 16): padded
frames are re-zeroed before *every* positional-convolution block, and excluded from attention,
so an utterance padded inside a batch gives the same output as the utterance alone.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def init_bert_linear(module: nn.Module) -> None:
    """fairseq ``init_bert_params`` for Linear layers: weight N(0, 0.02), bias 0."""
    if isinstance(module, nn.Linear) and not module.weight.is_meta:  # meta: shapes only
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def zero_padded(x: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
    """Zero padded frames of ``x`` ``[batch, frame, feature]`` (``padding_mask`` True = padded)."""
    if padding_mask is None:
        return x
    return x.masked_fill(padding_mask.unsqueeze(-1), 0.0)


class PositionalConvBlock(nn.Module):
    """Grouped Conv1d (same padding) -> LayerNorm without affine -> GELU, on ``[batch, frame, dim]``."""

    def __init__(self, dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
        # Even kernels give one extra frame with symmetric padding (fairseq SamePad removes it).
        self.num_remove = 1 if kernel_size % 2 == 0 else 0
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x.transpose(1, 2))
        if self.num_remove:
            x = x[:, :, : -self.num_remove]
        x = F.layer_norm(x.transpose(1, 2), (self.dim,))
        return F.gelu(x)


class ConvolutionalPositionalEmbedding(nn.Module):
    """``depth`` stacked ``PositionalConvBlock`` with kernel ``max(3, conv_pos // depth)``."""

    def __init__(self, dim: int, conv_pos: int, groups: int, depth: int) -> None:
        super().__init__()
        kernel_size = max(3, conv_pos // depth)
        self.layers = nn.ModuleList(PositionalConvBlock(dim, kernel_size, groups) for _ in range(depth))

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """``[batch, frame, dim] -> [batch, frame, dim]`` (the positional term, not yet added)."""
        for layer in self.layers:
            x = layer(zero_padded(x, padding_mask))
        return x


class SelfAttention(nn.Module):
    """Multi-head self-attention with q/k/v/out biases (fairseq MHA), via scaled_dot_product_attention.

    Without padding no mask is passed at all, so on a GPU SDPA may pick the flash kernel; with
    padding, a boolean key mask ``[batch, 1, 1, frame]`` (broadcast over heads and queries). In
    training SDPA's ``dropout_p`` drops attention weights, as fairseq's ``dropout_module`` does.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        batch, frames, dim = x.shape

        def split(projected: Tensor) -> Tensor:
            return projected.view(batch, frames, self.num_heads, self.head_dim).transpose(1, 2)

        attention_mask = None
        if padding_mask is not None:
            attention_mask = (~padding_mask)[:, None, None, :]  # True = may attend
        output = F.scaled_dot_product_attention(
            split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)), attn_mask=attention_mask,
            dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(output.transpose(1, 2).reshape(batch, frames, dim))


class FeedForward(nn.Module):
    """fc1 -> GELU -> activation dropout -> fc2 (the output is the data2vec/DinoSR target)."""

    def __init__(self, dim: int, ffn_dim: int, activation_dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.activation_dropout = nn.Dropout(activation_dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation_dropout(F.gelu(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Post-LN layer (official), or pre-LN with ``layer_norm_first`` (fairseq's option, used by data2vec).

    Returns (output, FFN output before dropout/residual/final LayerNorm); in both layouts the second
    is ``fc2``'s output, the layer result the teacher targets are built from.
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, layer_norm_first: bool = False) -> None:
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.attention = SelfAttention(dim, num_heads, attention_dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_layer_norm = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, ffn_dim, activation_dropout)
        self.feed_forward_dropout = nn.Dropout(dropout)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if self.layer_norm_first:
            x = x + self.attention_dropout(self.attention(self.attention_layer_norm(x), padding_mask))
            layer_result = self.feed_forward(self.final_layer_norm(x))
            return x + self.feed_forward_dropout(layer_result), layer_result
        x = self.attention_layer_norm(x + self.attention_dropout(self.attention(x, padding_mask)))
        layer_result = self.feed_forward(x)
        x = self.final_layer_norm(x + self.feed_forward_dropout(layer_result))
        return x, layer_result


class TransformerEncoder(nn.Module):
    """x + pos_conv(x) -> LayerNorm -> dropout -> layers (LayerDrop), post-LN.

    With ``layer_norm_first`` (pre-LN layers) the LayerNorm moves from before the first layer to after
    the last one, as in fairseq.

    ``forward(x [batch, frame, dim], padding_mask [batch, frame] or None)`` returns the last layer output
    and, per requested layer, the FFN output before the residual (``[batch, frame, dim]`` each).
    """

    def __init__(self, dim: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float,
                 attention_dropout: float, activation_dropout: float, layer_drop: float, conv_pos: int,
                 conv_pos_groups: int, pos_conv_depth: int, required_seq_len_multiple: int = 1,
                 layer_norm_first: bool = False) -> None:
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.pos_conv = ConvolutionalPositionalEmbedding(dim, conv_pos, conv_pos_groups, pos_conv_depth)
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_drop = layer_drop
        self.required_seq_len_multiple = max(1, required_seq_len_multiple)
        self.layers = nn.ModuleList(
            EncoderLayer(dim, num_heads, ffn_dim, dropout, attention_dropout, activation_dropout,
                         layer_norm_first)
            for _ in range(num_layers))
        self.apply(init_bert_linear)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None, min_layer: int = 0,
                output_layer_results: bool = False) -> Tuple[Tensor, Optional[List[Tensor]]]:
        """Returns (x ``[batch, frame, dim]``, layer results of layers ``min_layer..`` or None).

        With LayerDrop in training, skipped layers contribute no layer result.
        """
        frames = x.size(1)
        x = zero_padded(x, padding_mask)
        x = x + self.pos_conv(x, padding_mask)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        extra = (-frames) % self.required_seq_len_multiple
        if extra:
            x = F.pad(x, (0, 0, 0, extra))
            if padding_mask is None:
                padding_mask = torch.zeros(x.size(0), frames, dtype=torch.bool, device=x.device)
            padding_mask = F.pad(padding_mask, (0, extra), value=True)
        x = self.dropout(x)
        layer_results: List[Tensor] = []
        for index, layer in enumerate(self.layers):
            if self.training and self.layer_drop > 0 and float(torch.rand(())) < self.layer_drop:
                continue
            x, layer_result = layer(x, padding_mask)
            if output_layer_results and index >= min_layer:
                layer_results.append(layer_result[:, :frames])
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x[:, :frames], (layer_results if output_layer_results else None)
