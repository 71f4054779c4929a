"""Pure PyTorch DinoSR building blocks. Nothing here imports ESPnet.

Public API (docs/INTERFACES.md section 1): ``DinoSRConfig``, ``dinosr_base``, ``dinosr_tiny``,
``SpeechEncoder``, ``SpeechEncoderOutput``, ``compute_span_mask``, ``DinoSRModel``, ``Data2VecModel``,
``SSLOutput``, ``SSL_MODELS``, ``fairseq_to_dinosr``, ``dinosr_to_fairseq``.
"""
from dinosr_espnet.nets.config import DinoSRConfig, dinosr_base, dinosr_tiny
from dinosr_espnet.nets.data2vec import Data2VecModel
from dinosr_espnet.nets.dinosr import DinoSRModel
from dinosr_espnet.nets.fairseq_checkpoint import dinosr_to_fairseq, fairseq_to_dinosr
from dinosr_espnet.nets.masking import compute_span_mask
from dinosr_espnet.nets.self_distillation import SSLOutput
from dinosr_espnet.nets.speech_encoder import SpeechEncoder, SpeechEncoderOutput

SSL_MODELS = {"dinosr": DinoSRModel, "data2vec": Data2VecModel}

__all__ = ["DinoSRConfig", "dinosr_base", "dinosr_tiny", "compute_span_mask", "SpeechEncoder",
           "SpeechEncoderOutput", "DinoSRModel", "Data2VecModel", "SSLOutput", "SSL_MODELS",
           "fairseq_to_dinosr", "dinosr_to_fairseq"]
