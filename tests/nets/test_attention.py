"""SelfAttention through scaled_dot_product_attention: fairseq MHA numerics, and no dense mask for
batches without padding (so SDPA may pick the flash kernel on a GPU)."""

import torch
from torch.nn import functional as F

from dinosr_espnet.nets.transformer import SelfAttention, TransformerEncoder


def fairseq_attention(attention: SelfAttention, x, padding_mask):
    """Written out as in fairseq's MultiheadAttention: scaled q, -inf at padded keys, softmax, weighted v."""
    batch, frames, dim = x.shape
    heads, head_dim = attention.num_heads, attention.head_dim

    def split(projected):
        return projected.reshape(batch, frames, heads, head_dim).permute(0, 2, 1, 3)

    q = split(attention.q_proj(x)) * head_dim ** -0.5
    k, v = split(attention.k_proj(x)), split(attention.v_proj(x))
    scores = q @ k.transpose(-1, -2)                                    # [batch, head, query, key]
    if padding_mask is not None:
        scores = scores.masked_fill(padding_mask[:, None, None, :], float("-inf"))
    output = torch.softmax(scores, dim=-1) @ v
    return attention.out_proj(output.permute(0, 2, 1, 3).reshape(batch, frames, dim))


def test_attention_matches_the_written_out_formula_with_and_without_key_padding():
    torch.manual_seed(0)
    attention = SelfAttention(dim=32, num_heads=4, dropout=0.1).eval()
    x = torch.randn(3, 11, 32)
    padding_mask = torch.arange(11)[None, :] >= torch.tensor([11, 7, 4])[:, None]
    with torch.no_grad():
        torch.testing.assert_close(attention(x), fairseq_attention(attention, x, None), rtol=1e-5, atol=1e-6)
        masked = attention(x, padding_mask)
        torch.testing.assert_close(masked, fairseq_attention(attention, x, padding_mask), rtol=1e-5, atol=1e-6)
        # a padded key changes nothing: the valid part equals the utterance alone
        torch.testing.assert_close(masked[2, :4], attention(x[2:, :4])[0], rtol=1e-5, atol=1e-6)


def test_training_dropout_drops_attention_weights_and_rescales_them():
    """Value = 1 everywhere and an identity output projection: the output is the sum of the kept
    attention weights / (1 - p): spread around 1 (weights dropped), not only {0, 2} (output dropped)."""
    torch.manual_seed(0)
    attention = SelfAttention(dim=8, num_heads=1, dropout=0.5).train()
    with torch.no_grad():
        attention.v_proj.weight.zero_()
        attention.v_proj.bias.fill_(1.0)
        attention.out_proj.weight.copy_(torch.eye(8))
        attention.out_proj.bias.zero_()
        output = attention(torch.randn(4, 64, 8))
    values = output[..., 0].flatten()
    assert abs(float(values.mean()) - 1.0) < 0.05
    assert float(values.std()) > 0.05
    near_zero_or_two = (values.abs() < 1e-3) | ((values - 2).abs() < 1e-3)
    assert float(near_zero_or_two.float().mean()) < 0.5


def record_masks(monkeypatch):
    masks = []
    original = F.scaled_dot_product_attention

    def recording(*args, attn_mask=None, **kwargs):
        masks.append(attn_mask)
        return original(*args, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    return masks


def tiny_encoder():
    return TransformerEncoder(dim=32, num_layers=2, num_heads=4, ffn_dim=64, dropout=0.0, attention_dropout=0.0,
                              activation_dropout=0.0, layer_drop=0.0, conv_pos=8, conv_pos_groups=4,
                              pos_conv_depth=2, required_seq_len_multiple=2).eval()


def test_unpadded_batch_of_even_length_runs_attention_without_any_mask(monkeypatch):
    masks = record_masks(monkeypatch)
    with torch.no_grad():
        tiny_encoder()(torch.randn(2, 10, 32))
    assert len(masks) == 2 and all(mask is None for mask in masks)


def test_padded_batch_passes_a_broadcast_boolean_key_padding_mask(monkeypatch):
    masks = record_masks(monkeypatch)
    padding_mask = torch.arange(10)[None, :] >= torch.tensor([10, 6])[:, None]
    with torch.no_grad():
        tiny_encoder()(torch.randn(2, 10, 32), padding_mask)
    assert len(masks) == 2
    for mask in masks:
        assert mask.dtype == torch.bool and mask.shape == (2, 1, 1, 10)  # True = may attend
        assert torch.equal(mask[:, 0, 0], ~padding_mask)


def test_odd_length_gets_the_required_multiple_pad_frame_masked(monkeypatch):
    """required_seq_len_multiple 2 pads an odd frame count by one masked frame (fairseq), so an
    unpadded batch needs a mask then: --crop_bucket_frames with an even value avoids it."""
    masks = record_masks(monkeypatch)
    with torch.no_grad():
        tiny_encoder()(torch.randn(2, 9, 32))
    assert masks[0].shape == (2, 1, 1, 10) and bool(masks[0][:, 0, 0, :9].all()) and not bool(masks[0][..., 9].any())
