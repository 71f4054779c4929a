"""Pure PyTorch DinoSR building blocks. Nothing here imports ESPnet.

Public API (docs/INTERFACES.md section 1): ``DinoSRConfig``, ``dinosr_base``, ``dinosr_tiny``,
``SpeechEncoder``, ``SpeechEncoderOutput``, ``compute_span_mask``, ``DinoSRModel``, ``Data2VecModel``,
``SSLOutput``, ``SSL_MODELS``, ``fairseq_to_dinosr``, ``dinosr_to_fairseq``.
"""
from dinosr_espnet.nets.config import DinoSRConfig, dinosr_base, dinosr_tiny
from dinosr_espnet.nets.masking import compute_span_mask
from dinosr_espnet.nets.speech_encoder import SpeechEncoder, SpeechEncoderOutput

__all__ = ["DinoSRConfig", "dinosr_base", "dinosr_tiny", "compute_span_mask", "SpeechEncoder",
           "SpeechEncoderOutput"]
