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
    """A ``Data2VecAudioConfig`` with the architecture and dropouts of a ``DinoSRConfig`` (the export's mapping)."""
    from transformers import Data2VecAudioConfig

    from dinosr_espnet.export.huggingface import hugging_face_config_values

    # mask_time_prob > 0 so that masked_spec_embed exists (our mask_emb); the benchmark passes the same span
    # mask to both
    return Data2VecAudioConfig(**hugging_face_config_values(config), mask_time_prob=config.mask_prob)


def build_reference(config, device: torch.device) -> Optional[torch.nn.Module]:
    """The reference model on ``device``, or None when transformers is missing."""
    if not transformers_available():
        return None
    from transformers import Data2VecAudioModel

    return Data2VecAudioModel(data2vec_audio_config(config)).to(device)
