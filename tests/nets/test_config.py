import pytest
import torch
import yaml

from dinosr_espnet.nets.config import DinoSRConfig, config_help, dinosr_base, dinosr_tiny
from dinosr_espnet.nets.speech_encoder import build_front_end


def test_base_defaults_are_the_official_base_yaml_values():
    config = dinosr_base()
    assert config.conv_feature_layers == ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    assert (config.encoder_embed_dim, config.encoder_layers, config.encoder_attention_heads,
            config.encoder_ffn_embed_dim) == (768, 12, 12, 3072)
    assert (config.mask_prob, config.mask_length) == (0.8, 10)
    assert (config.average_top_k_layers, config.codebook_size) == (8, 256)
    assert (config.ema_decay, config.ema_end_decay, config.ema_anneal_end_step) == (0.999, 0.9999, 30000)
    assert (config.freeze_teacher_step, config.codebook_decay, config.encoder_layerdrop) == (200001, 0.9, 0.05)
    assert (config.conv_pos, config.pos_conv_depth, config.conv_pos_groups) == (95, 5, 16)
    assert config.conv_bias is False and config.feature_grad_mult == 1.0 and config.normalize_waveform


def test_from_dict_names_every_unknown_key():
    with pytest.raises(ValueError, match=r"\['bogus_a', 'bogus_b'\]"):
        DinoSRConfig.from_dict({"bogus_b": 1, "bogus_a": 2, "mask_prob": 0.5})


def test_to_dict_is_yaml_safe_and_round_trips():
    config = dinosr_tiny(mask_prob=0.5)
    text = yaml.safe_dump(config.to_dict())
    assert DinoSRConfig.from_dict(yaml.safe_load(text)) == config


def test_every_field_has_help_text():
    assert all(config_help().values())


def test_invalid_top_k_is_rejected():
    with pytest.raises(ValueError, match="average_top_k_layers"):
        dinosr_tiny(average_top_k_layers=9)


def test_base_regularisation_and_masking_defaults_are_the_spec_values():
    """Literal values of the spec (2.2 defaults not in base.yaml; 1.2 steps 5-6), not of the code."""
    for config in (DinoSRConfig(), dinosr_base()):
        assert config.dropout == 0.1
        assert config.attention_dropout == 0.1
        assert config.activation_dropout == 0.0
        assert config.dropout_input == 0.0
        assert config.required_seq_len_multiple == 2
        assert config.mask_min_masks == 1
        assert config.require_same_masks is True


@pytest.mark.parametrize("overrides", [{}, {"frontend": "fbank", "fbank_time_strides": [2, 1]},
                                       {"frontend": "fbank", "fbank_time_strides": [2, 2]}])
def test_frame_window_and_stride_predict_the_front_end_frame_count(overrides):
    config = dinosr_tiny(fbank_num_mels=40, fbank_channels=2, **overrides)
    window, stride = config.frame_window_and_stride
    front_end = build_front_end(config).eval()
    for samples in (window, window + stride - 1, window + stride, 7 * stride + window + 3):
        with torch.no_grad():
            frames = front_end(torch.randn(1, samples)).shape[1]
        assert frames == (samples - window) // stride + 1, (samples, window, stride)
    assert stride == {(): 320, (2, 1): 320, (2, 2): 640}[tuple(overrides.get("fbank_time_strides", ()))]
