"""Parity with an independent implementation of the same architecture: Hugging Face Data2VecAudioModel."""
import re

import pytest
import torch

from dinosr_espnet.nets import SpeechEncoder
from dinosr_espnet.nets.speech_encoder import standardize_waveform
from nets_test_utils import deterministic_tiny, random_batch

transformers = pytest.importorskip("transformers")

OURS_TO_HUGGING_FACE = [
    (r"mask_emb", r"masked_spec_embed"),
    (r"layer_norm\.(.*)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(.*)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.layers\.(.*)", r"encoder.pos_conv_embed.layers.\1"),
    (r"encoder\.layers\.(\d+)\.attention_layer_norm\.(.*)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.fc1\.(.*)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.fc2\.(.*)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"(.*)", r"\1"),
]


def hugging_face_copy(encoder: SpeechEncoder):
    config = encoder.config
    reference = transformers.Data2VecAudioModel(transformers.Data2VecAudioConfig(
        conv_dim=[layer[0] for layer in config.conv_feature_layers],
        conv_kernel=[layer[1] for layer in config.conv_feature_layers],
        conv_stride=[layer[2] for layer in config.conv_feature_layers],
        num_feat_extract_layers=len(config.conv_feature_layers), conv_bias=False, feat_extract_norm="layer",
        hidden_size=config.encoder_embed_dim, num_hidden_layers=config.encoder_layers,
        num_attention_heads=config.encoder_attention_heads, intermediate_size=config.encoder_ffn_embed_dim,
        num_conv_pos_embeddings=config.pos_conv_depth,
        conv_pos_kernel_size=max(3, config.conv_pos // config.pos_conv_depth),
        num_conv_pos_embedding_groups=config.conv_pos_groups, layer_norm_eps=1e-5, mask_time_prob=0.5))
    state = {}
    for key, value in encoder.state_dict().items():
        for pattern, template in OURS_TO_HUGGING_FACE:
            if re.fullmatch(pattern, key):
                state[re.sub(pattern, template, key)] = value
                break
    reference.load_state_dict(state, strict=True)
    return reference.eval()


def test_student_matches_hugging_face_data2vec_audio():
    torch.manual_seed(0)
    encoder = SpeechEncoder(deterministic_tiny()).eval()
    reference = hugging_face_copy(encoder)
    waveform, lengths = random_batch([16000, 16000])
    frames = encoder.num_frames(16000)
    time_mask = torch.zeros(2, frames, dtype=torch.bool)
    time_mask[0, 4:14] = True
    ours = encoder(waveform, lengths, time_mask=time_mask).x
    with torch.no_grad():
        theirs = reference(standardize_waveform(waveform, lengths), mask_time_indices=time_mask).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-4)
