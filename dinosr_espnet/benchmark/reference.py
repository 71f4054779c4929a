"""The independent reference: Hugging Face ``Data2VecAudioModel`` configured like our student.

data2vec-audio and the DinoSR student share one architecture (layer-norm CNN without conv bias,
LayerNorm + Linear projection, multi-layer grouped positional convolution, post-LN Transformer),
so with matching configs the parameter counts agree exactly.
"""
from typing import Optional

import torch

MISSING_TRANSFORMERS = ("transformers is not installed, so the comparison with Hugging Face's Data2VecAudioModel "
                        "is skipped. Install the optional extra: pip install -e '.[bench]' (or pip install transformers).")


def transformers_available() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def data2vec_audio_config(config) -> "transformers.Data2VecAudioConfig":  # noqa: F821
    """A ``Data2VecAudioConfig`` with the architecture and dropouts of a ``DinoSRConfig``."""
    from transformers import Data2VecAudioConfig

    layers = [tuple(layer) for layer in config.conv_feature_layers]
    return Data2VecAudioConfig(
        conv_dim=[layer[0] for layer in layers],
        conv_kernel=[layer[1] for layer in layers],
        conv_stride=[layer[2] for layer in layers],
        num_feat_extract_layers=len(layers),
        conv_bias=False,
        feat_extract_norm="layer",
        hidden_size=config.encoder_embed_dim,
        num_hidden_layers=config.encoder_layers,
        num_attention_heads=config.encoder_attention_heads,
        intermediate_size=config.encoder_ffn_embed_dim,
        # fairseq: pos_conv_depth blocks with kernel max(3, conv_pos // depth) (spec 1.2 step 6)
        num_conv_pos_embeddings=config.pos_conv_depth,
        conv_pos_kernel_size=max(3, config.conv_pos // config.pos_conv_depth),
        num_conv_pos_embedding_groups=config.conv_pos_groups,
        hidden_dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout,
        feat_proj_dropout=config.dropout_input,
        layerdrop=config.encoder_layerdrop,
        # > 0 so that masked_spec_embed exists (our mask_emb); the benchmark passes the same span mask to both
        mask_time_prob=config.mask_prob,
        mask_time_length=config.mask_length,
        layer_norm_eps=1e-5,
    )


def build_reference(config, device: torch.device) -> Optional[torch.nn.Module]:
    """The reference model on ``device``, or None when transformers is missing."""
    if not transformers_available():
        return None
    from transformers import Data2VecAudioModel

    return Data2VecAudioModel(data2vec_audio_config(config)).to(device)
