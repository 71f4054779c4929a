import pytest
import torch
from nets_test_utils import deterministic_tiny, random_batch

from dinosr_espnet.nets.config import dinosr_base
from dinosr_espnet.nets.speech_encoder import SpeechEncoder, standardize_waveform
from dinosr_espnet.nets.transformer import PositionalConvBlock


@pytest.fixture(scope="module")
def base_encoder():
    with torch.device("meta"):
        return SpeechEncoder(dinosr_base())


@pytest.fixture
def tiny_encoder():
    torch.manual_seed(0)
    return SpeechEncoder(deterministic_tiny()).eval()


def test_base_output_lengths_are_50_hz(base_encoder):
    lengths = torch.tensor([400, 719, 720, 16000, 64000])
    assert base_encoder.output_lengths(lengths).tolist() == ((lengths - 400) // 320 + 1).tolist()


def test_base_cnn_has_no_bias_and_layer_norm_in_every_block(base_encoder):
    blocks = base_encoder.feature_extractor.conv_layers
    assert len(blocks) == 7
    assert all(block.conv.bias is None and block.layer_norm.weight is not None for block in blocks)
    assert [(b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in blocks] == \
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


def test_base_positional_convolution_is_five_blocks_of_kernel_19_groups_16(base_encoder):
    layers = base_encoder.encoder.pos_conv.layers
    assert len(layers) == 5
    for layer in layers:
        assert isinstance(layer, PositionalConvBlock)
        assert (layer.conv.kernel_size[0], layer.conv.groups, layer.conv.padding[0]) == (19, 16, 9)
        assert [name for name, _ in layer.named_parameters()] == ["conv.weight", "conv.bias"]  # LN: no affine


def test_attention_projections_have_bias(base_encoder):
    attention = base_encoder.encoder.layers[0].attention
    assert all(getattr(attention, f"{name}_proj").bias is not None for name in ("q", "k", "v", "out"))


def test_encoder_linear_layers_use_bert_init_and_mask_emb_is_uniform():
    torch.manual_seed(0)
    encoder = SpeechEncoder(deterministic_tiny(encoder_embed_dim=256, encoder_ffn_embed_dim=1024))
    fc1 = encoder.encoder.layers[0].feed_forward.fc1
    assert abs(fc1.weight.std().item() - 0.02) < 0.002 and fc1.bias.abs().max() == 0
    assert encoder.mask_emb.min() >= 0 and encoder.mask_emb.max() < 1 and encoder.mask_emb.std() > 0.2


def test_frame_count_matches_output_lengths(tiny_encoder):
    waveform, lengths = random_batch([16000, 12345])
    output = tiny_encoder(waveform, lengths)
    assert output.x.shape[1] == tiny_encoder.num_frames(16000)
    assert output.lengths.tolist() == tiny_encoder.output_lengths(lengths).tolist()
    assert output.padding_mask[1].sum() == output.x.shape[1] - output.lengths[1]


def test_padded_utterance_gives_the_same_output_as_alone(tiny_encoder):
    # 12345 samples -> an odd frame count, which also exercises the pad-to-multiple-of-2.
    waveform, lengths = random_batch([16000, 12345])
    waveform[1, 12345:] = 1000.0 * torch.randn(16000 - 12345)  # garbage in the padding must not matter
    batched = tiny_encoder(waveform, lengths, output_layer_results=True)
    alone = tiny_encoder(waveform[1:, :12345], lengths[1:], output_layer_results=True)
    frames = int(alone.lengths[0])
    assert torch.allclose(batched.x[1, :frames], alone.x[0], atol=1e-5)
    for with_padding, without in zip(batched.layer_results, alone.layer_results):
        assert torch.allclose(with_padding[1, :frames], without[0], atol=1e-5)


def test_positional_convolution_rezeroes_padding_before_every_block(tiny_encoder):
    positional = tiny_encoder.encoder.pos_conv
    x = torch.randn(1, 40, 64)
    padding = torch.zeros(1, 40, dtype=torch.bool)
    padding[0, 30:] = True
    alone = positional(x[:, :30])
    padded = positional(x, padding)
    assert torch.allclose(padded[:, :30], alone, atol=1e-5)


def test_waveform_standardisation_uses_valid_samples_only(tiny_encoder):
    waveform, lengths = random_batch([8000, 6000])
    normalized = standardize_waveform(waveform * 3.0 + 0.5, lengths)
    valid = normalized[1, :6000]
    assert abs(valid.mean().item()) < 1e-5 and abs(valid.var(unbiased=False).item() - 1.0) < 1e-3
    assert normalized[1, 6000:].abs().max() == 0
    scaled = tiny_encoder(waveform * 7.0 - 2.0, lengths).x
    assert torch.allclose(scaled, tiny_encoder(waveform, lengths).x, atol=1e-4)


def test_layer_results_are_ffn_outputs_before_the_residual(tiny_encoder):
    captured = []
    hooks = [layer.feed_forward.fc2.register_forward_hook(lambda module, inputs, output: captured.append(output))
             for layer in tiny_encoder.encoder.layers]
    waveform, lengths = random_batch([8000])
    output = tiny_encoder(waveform, lengths, output_layer_results=True)
    for hook in hooks:
        hook.remove()
    assert len(output.layer_results) == len(tiny_encoder.encoder.layers)
    for result, fc2_output in zip(output.layer_results, captured):
        assert torch.equal(result, fc2_output[:, : result.shape[1]])
    assert not torch.allclose(output.layer_results[-1], output.x)


def test_time_mask_replaces_frames_by_mask_embedding_and_channel_mask_zeroes(tiny_encoder):
    captured = {}
    hook = tiny_encoder.encoder.register_forward_pre_hook(lambda module, args: captured.update(x=args[0]))
    waveform, lengths = random_batch([8000, 8000])
    frames = tiny_encoder.num_frames(8000)
    time_mask = torch.zeros(2, frames, dtype=torch.bool)
    time_mask[0, 3:7] = True
    channel_mask = torch.zeros(2, 64, dtype=torch.bool)
    channel_mask[1, :5] = True
    output = tiny_encoder(waveform, lengths, time_mask=time_mask, channel_mask=channel_mask)
    hook.remove()
    x = captured["x"]
    assert torch.equal(x[0, 3:7], tiny_encoder.mask_emb.expand(4, -1))
    assert torch.equal(x[0, 7], output.features[0, 7])
    assert x[1, :, :5].abs().max() == 0 and x[1, :, 5:].abs().max() > 0


def test_layer_drop_skips_layers_in_training_only():
    encoder = SpeechEncoder(deterministic_tiny(encoder_layerdrop=1.0))
    waveform, lengths = random_batch([4000])
    assert encoder.train()(waveform, lengths, output_layer_results=True).layer_results == []
    assert len(encoder.eval()(waveform, lengths, output_layer_results=True).layer_results) == 3


def test_feature_grad_mult_zero_stops_gradient_into_the_cnn():
    encoder = SpeechEncoder(deterministic_tiny(feature_grad_mult=0.0))
    waveform, lengths = random_batch([4000])
    encoder(waveform, lengths).x.sum().backward()
    assert encoder.feature_extractor.conv_layers[0].conv.weight.grad is None
    assert encoder.post_extract_proj.weight.grad is not None


def test_feature_grad_mult_scales_the_cnn_gradient():
    grads = []
    for multiplier in (1.0, 0.1):
        torch.manual_seed(0)
        encoder = SpeechEncoder(deterministic_tiny(feature_grad_mult=multiplier))
        waveform, lengths = random_batch([4000])
        encoder(waveform, lengths).x.sum().backward()
        grads.append(encoder.feature_extractor.conv_layers[0].conv.weight.grad)
    assert torch.allclose(grads[1], 0.1 * grads[0], rtol=1e-4, atol=1e-9)
