"""The log-mel front end (``frontend: fbank``) and pre-LN layers (``layer_norm_first``): demo-model options."""
import pytest
import torch
from nets_test_utils import deterministic_tiny, random_batch

from dinosr_espnet.nets import SpeechEncoder
from dinosr_espnet.nets.config import DinoSRConfig, dinosr_base
from dinosr_espnet.nets.fbank_frontend import (FbankFrontEnd, LogMelSpectrogram, fbank_frame_geometry,
                                                htk_mel_filterbank)
from dinosr_espnet.nets.transformer import EncoderLayer, TransformerEncoder

torchaudio = pytest.importorskip("torchaudio")


def test_official_defaults_are_the_cnn_and_post_ln():
    config = dinosr_base()
    assert config.frontend == "cnn"
    assert config.layer_norm_first is False


def test_unknown_frontend_is_refused_by_name():
    with pytest.raises(ValueError, match="frontend must be one of"):
        DinoSRConfig(frontend="mfcc")


def test_mel_filterbank_equals_torchaudio_htk_filters():
    theirs = torchaudio.functional.melscale_fbanks(n_freqs=257, f_min=0.0, f_max=8000.0, n_mels=80,
                                                   sample_rate=16000, norm=None, mel_scale="htk")
    assert torch.allclose(htk_mel_filterbank(80), theirs, atol=1e-5)


def test_log_mel_equals_a_numpy_kaldi_style_framing_with_utterance_mean_removed():
    import numpy as np
    waveform, lengths = random_batch([8000])
    ours = LogMelSpectrogram(80)(waveform, lengths)[0].numpy()
    filters = torchaudio.functional.melscale_fbanks(n_freqs=257, f_min=0.0, f_max=8000.0, n_mels=80,
                                                    sample_rate=16000, norm=None, mel_scale="htk").numpy()
    samples = waveform[0].double().numpy()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)     # periodic Hann
    frames = [samples[160 * j:160 * j + 400] * window for j in range((8000 - 400) // 160 + 1)]
    power = np.abs(np.fft.rfft(np.stack(frames), n=512)) ** 2
    log_mel = np.log(power @ filters + 1e-6)
    expected = log_mel - log_mel.mean(axis=0, keepdims=True)
    assert ours.shape == expected.shape == (48, 80)
    assert np.allclose(ours, expected, atol=1e-3)


@pytest.mark.parametrize("samples", [399, 400, 719, 720, 1040, 1041, 16000, 16399])
def test_default_strides_give_the_official_cnn_frame_grid(samples):
    front_end = FbankFrontEnd(num_mels=80, channels=4)
    expected = max(0, (samples - 400) // 320 + 1)
    assert int(front_end.output_lengths(torch.tensor([samples]))[0]) == expected
    if samples >= 400:
        assert front_end(torch.randn(1, samples)).shape == (1, expected, 4 * 19)


@pytest.mark.parametrize("strides", [(2, 1), (2, 2), (3, 2, 1)])
def test_frame_geometry_predicts_the_frame_count(strides):
    window, stride = fbank_frame_geometry(strides)
    front_end = FbankFrontEnd(num_mels=40, channels=2, time_strides=strides)
    for samples in range(400, 6000, 97):
        assert front_end(torch.randn(1, samples)).shape[1] == (samples - window) // stride + 1


@pytest.mark.parametrize("samples", [400, 1039, 1040, 1041, 16000])
def test_strides_2_2_give_25_hz(samples):
    front_end = FbankFrontEnd(num_mels=80, channels=4, time_strides=(2, 2))
    expected = (samples - 400) // 640 + 1
    assert int(front_end.output_lengths(torch.tensor([samples]))[0]) == expected
    assert front_end(torch.randn(1, samples)).shape[1] == expected


def test_an_utterance_gives_the_same_features_alone_and_in_a_padded_batch():
    torch.manual_seed(0)
    front_end = FbankFrontEnd(num_mels=40, channels=8).eval()
    for conv in front_end.blocks:
        torch.nn.init.normal_(conv.conv.bias)   # a non-zero bias would leak into padded frames if not re-masked
    waveform, lengths = random_batch([16000, 9000, 5300])
    batch = front_end(waveform, lengths)
    frames = front_end.output_lengths(lengths)
    for row, (length, valid) in enumerate(zip(lengths.tolist(), frames.tolist())):
        alone = front_end(waveform[row:row + 1, :length])
        assert alone.shape[1] == valid
        assert torch.allclose(batch[row, :valid], alone[0], atol=1e-5)


def test_fbank_dinosr_student_trains_with_pre_ln_layers():
    from dinosr_espnet.nets import DinoSRModel
    torch.manual_seed(0)
    config = deterministic_tiny(frontend="fbank", fbank_num_mels=40, fbank_channels=8, layer_norm_first=True)
    model = DinoSRModel(config)
    waveform, lengths = random_batch([16000, 12000])
    output = model(waveform, lengths)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    front_end = model.student.feature_extractor
    assert isinstance(front_end, FbankFrontEnd)
    assert front_end.blocks[0].conv.weight.grad.abs().sum() > 0
    assert model.student.layer_norm.normalized_shape == (config.feature_dim,) == (8 * 9,)


def _copy_to_hugging_face_stable_layer(layer: EncoderLayer, dim: int, heads: int, ffn: int):
    from transformers import Wav2Vec2Config
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2EncoderLayerStableLayerNorm
    reference = Wav2Vec2EncoderLayerStableLayerNorm(Wav2Vec2Config(
        hidden_size=dim, num_attention_heads=heads, intermediate_size=ffn, layer_norm_eps=1e-5,
        hidden_act="gelu", attn_implementation="eager"))
    renames = {"attention_layer_norm.": "layer_norm.", "feed_forward.fc1.": "feed_forward.intermediate_dense.",
               "feed_forward.fc2.": "feed_forward.output_dense."}
    state = {}
    for key, value in layer.state_dict().items():
        for ours, theirs in renames.items():
            key = key.replace(ours, theirs) if key.startswith(ours) else key
        state[key] = value
    reference.load_state_dict(state, strict=True)
    return reference.eval()


def test_pre_ln_layer_equals_hugging_face_stable_layer_norm_layer():
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    layer = EncoderLayer(32, 4, 64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                         layer_norm_first=True).eval()
    for parameter in layer.parameters():   # random LayerNorm affine too, so a swapped LayerNorm shows
        torch.nn.init.normal_(parameter, std=0.3)
    reference = _copy_to_hugging_face_stable_layer(layer, 32, 4, 64)
    x = torch.randn(2, 11, 32)
    ours, _ = layer(x)
    with torch.no_grad():
        theirs = reference(x)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs   # (transformers 4 returns a tuple)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_pre_ln_encoder_normalises_after_the_last_layer_not_before_the_first():
    torch.manual_seed(0)
    encoder = TransformerEncoder(16, 1, 2, 32, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                                 layer_drop=0.0, conv_pos=4, conv_pos_groups=2, pos_conv_depth=2,
                                 layer_norm_first=True).eval()
    torch.nn.init.normal_(encoder.layer_norm.weight)
    x = torch.randn(2, 10, 16)
    output, _ = encoder(x)
    layer_output, _ = encoder.layers[0](x + encoder.pos_conv(x))
    expected = torch.nn.functional.layer_norm(layer_output, (16,), encoder.layer_norm.weight,
                                              encoder.layer_norm.bias)
    assert torch.allclose(output, expected, atol=1e-5)


def test_speech_encoder_with_fbank_keeps_the_50_hz_lengths():
    encoder = SpeechEncoder(deterministic_tiny(frontend="fbank", fbank_num_mels=40, fbank_channels=4)).eval()
    waveform, lengths = random_batch([16000, 7000])
    output = encoder(waveform, lengths)
    assert output.lengths.tolist() == [(16000 - 400) // 320 + 1, (7000 - 400) // 320 + 1]
    assert output.padding_mask is not None and bool(output.padding_mask[1, output.lengths[1]:].all())
