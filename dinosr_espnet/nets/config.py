"""The one configuration object of the DinoSR model (frozen dataclass, official defaults).

Every field's default is the official ``config/base.yaml`` value, or the fairseq default that
the yaml leaves implicit (spec section 2.2). ``dinosr_base()`` and ``dinosr_tiny()`` are the two
factories; ``from_dict``/``to_dict`` translate to and from YAML-safe dictionaries.
"""
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

from dinosr_espnet.nets.fbank_frontend import fbank_feature_dim, fbank_frame_geometry
from dinosr_espnet.nets.feature_extractor import receptive_field_and_stride

ConvLayers = Tuple[Tuple[int, int, int], ...]
FRONTENDS = ("cnn", "fbank")

BASE_CONV_FEATURE_LAYERS: ConvLayers = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2

COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _field(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class DinoSRConfig:
    """Hyper-parameters of the DinoSR student, teacher, codebooks and loss (defaults: Base)."""

    # --- front end -------------------------------------------------------------------------
    frontend: str = _field(
        "cnn", "'cnn' = the official raw-waveform CNN (conv_feature_layers); 'fbank' = 80-dim log-mel + "
        "Conv2d subsampling (not in the paper; faster-learning small models, nets/fbank_frontend.py)")
    fbank_num_mels: int = _field(80, "frontend fbank: mel bins")
    fbank_channels: int = _field(64, "frontend fbank: channels of each Conv2d subsampling block")
    fbank_time_strides: Tuple[int, ...] = _field(
        (2, 1), "frontend fbank: time stride of each Conv2d block over the 100 Hz frames; (2, 1) = 50 Hz, "
        "the official CNN's frame grid; (2, 2) = 25 Hz")
    conv_feature_layers: ConvLayers = _field(
        BASE_CONV_FEATURE_LAYERS, "CNN blocks as (channels, kernel, stride); official: 512ch x 7, stride 320")
    conv_bias: bool = _field(False, "bias in the CNN convolutions (official: False)")
    feature_grad_mult: float = _field(
        1.0, "gradient scale into the CNN (1.0 in DinoSR pre-training; 0 runs the CNN without gradient)")
    normalize_waveform: bool = _field(
        True, "standardise each waveform to zero mean / unit variance over its valid samples (task.normalize)")
    # --- Transformer -----------------------------------------------------------------------
    encoder_embed_dim: int = _field(768, "model dimension D")
    encoder_layers: int = _field(12, "number of Transformer layers")
    layer_norm_first: bool = _field(
        False, "pre-LN layers (LayerNorm before attention / FFN, one LayerNorm after the last layer), as "
        "fairseq's layer_norm_first; official DinoSR: False (post-LN)")
    encoder_attention_heads: int = _field(12, "attention heads")
    encoder_ffn_embed_dim: int = _field(3072, "feed-forward inner dimension")
    dropout: float = _field(0.1, "dropout after the positional block, attention output and FFN output")
    attention_dropout: float = _field(0.1, "dropout on attention weights")
    activation_dropout: float = _field(0.0, "dropout after the FFN activation")
    encoder_layerdrop: float = _field(0.05, "probability of skipping a whole layer in training (LayerDrop)")
    dropout_input: float = _field(0.0, "dropout on projected CNN features before masking")
    conv_pos: int = _field(95, "total positional-convolution kernel; each block uses max(3, conv_pos // depth)")
    conv_pos_groups: int = _field(16, "groups of the positional convolutions")
    pos_conv_depth: int = _field(5, "number of stacked positional-convolution blocks (>= 2)")
    required_seq_len_multiple: int = _field(2, "pad the frame axis to a multiple of this inside the Transformer")
    # --- masking ---------------------------------------------------------------------------
    mask_prob: float = _field(0.8, "span-start probability: num_mask = int(mask_prob * T / mask_length + U(0,1))")
    mask_length: int = _field(10, "frames per masked span")
    mask_min_masks: int = _field(1, "minimum number of spans per utterance")
    require_same_masks: bool = _field(True, "thin every utterance to the batch minimum of masked frames")
    # --- targets, codebooks, loss ------------------------------------------------------------
    average_top_k_layers: int = _field(8, "number K of top teacher layers used as targets (codebooks/heads)")
    codebook_size: int = _field(256, "codewords V per codebook")
    codebook_decay: float = _field(0.9, "EMA factor tau of the codebook running sums and counts")
    loss_beta: float = _field(0.0, "data2vec only: smooth-L1 beta, 0 = squared error")
    loss_scale: Optional[float] = _field(None, "data2vec only: loss scale, None = 1/sqrt(D)")
    # --- EMA teacher -----------------------------------------------------------------------
    ema_decay: float = _field(0.999, "teacher EMA decay at update 0")
    ema_end_decay: float = _field(0.9999, "teacher EMA decay reached at ema_anneal_end_step")
    ema_anneal_end_step: int = _field(30000, "updates of the linear decay anneal")
    freeze_teacher_step: int = _field(
        200001, "from this update on the teacher and the CNN/LayerNorm/projection are frozen (code default)")
    # --- dead-codeword remedies: NOT in the paper or the official code; the defaults (off) are official --
    codebook_reseed_after: int = _field(
        0, "re-seed a codeword nearest to no target for this many codebook updates from a random target "
           "of the current batch (0 = off, official: a never-nearest codeword never moves)")
    codebook_init_from_targets: bool = _field(
        False, "initialise the codewords from random targets of the first training batch (official: "
               "random instance-normalised init)")

    # --- speed (issue 17): how the model runs, not what it computes; defaults = the eager path ----
    compile: bool = _field(
        False, "torch.compile the CNN front end, the positional convolution and every Transformer layer "
               "(student and teacher, in place: checkpoint keys unchanged); see nets/compilation.py")
    compile_backend: str = _field(
        "inductor", "torch.compile backend (inductor generates kernels; aot_eager only captures graphs)")
    compile_mode: Optional[str] = _field(
        None, "torch.compile mode: None (default), reduce-overhead (CUDA graphs), max-autotune, "
              "max-autotune-no-cudagraphs")
    compile_dynamic: Optional[bool] = _field(
        None, "torch.compile dynamic: None = static graphs, dynamic after a shape change; False = one static "
              "graph per shape (with --crop_bucket_frames in pre-training)")

    def __post_init__(self) -> None:
        # YAML gives lists; keep tuples so the frozen config stays hashable and comparable.
        object.__setattr__(self, "conv_feature_layers",
                           tuple(tuple(int(v) for v in layer) for layer in self.conv_feature_layers))
        object.__setattr__(self, "fbank_time_strides", tuple(int(v) for v in self.fbank_time_strides))
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {self.frontend!r}")
        if self.frontend == "fbank" and (not self.fbank_time_strides
                                         or any(s < 1 for s in self.fbank_time_strides)):
            raise ValueError(f"fbank_time_strides must be positive ints, got {self.fbank_time_strides}")
        if any(len(layer) != 3 for layer in self.conv_feature_layers):
            raise ValueError(f"conv_feature_layers must be (channels, kernel, stride) triples, "
                             f"got {self.conv_feature_layers}")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                             f"encoder_attention_heads {self.encoder_attention_heads}")
        if not 1 <= self.average_top_k_layers <= self.encoder_layers:
            raise ValueError(f"average_top_k_layers must be in [1, encoder_layers={self.encoder_layers}], "
                             f"got {self.average_top_k_layers}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {list(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.pos_conv_depth < 2:
            raise ValueError("pos_conv_depth must be >= 2 (the single weight-normed convolution of "
                             "wav2vec 2.0 is not implemented)")
        if self.codebook_reseed_after < 0:
            raise ValueError(f"codebook_reseed_after must be >= 0 (0 = off), got {self.codebook_reseed_after}")

    @property
    def feature_dim(self) -> int:
        """Channels C of the front end's output (CNN channels, or fbank channels x remaining mel bins)."""
        if self.frontend == "fbank":
            return fbank_feature_dim(self.fbank_num_mels, self.fbank_channels, len(self.fbank_time_strides))
        return self.conv_feature_layers[-1][0]

    @property
    def frame_window_and_stride(self) -> Tuple[int, int]:
        """``(window, stride)`` in samples of the front end: ``(N - window) // stride + 1`` frames for N samples.

        The official CNN and ``fbank_time_strides: [2, 1]``: ``(400, 320)``, 50 Hz; ``[2, 2]``: ``(400, 640)``.
        """
        if self.frontend == "fbank":
            return fbank_frame_geometry(self.fbank_time_strides)
        return receptive_field_and_stride(self.conv_feature_layers)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "DinoSRConfig":
        """Build from a (YAML) dictionary; ValueError naming every unknown key."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DinoSRConfig keys: {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> Dict[str, Any]:
        """YAML-safe dictionary (lists instead of tuples)."""
        values = asdict(self)
        values["conv_feature_layers"] = [list(layer) for layer in self.conv_feature_layers]
        values["fbank_time_strides"] = list(self.fbank_time_strides)
        return values

    def replace(self, **overrides: Any) -> "DinoSRConfig":
        return self.from_dict({**self.to_dict(), **overrides})


def config_help() -> Dict[str, str]:
    """Field name -> help text (for command-line tools and docs)."""
    return {item.name: item.metadata.get("help", "") for item in fields(DinoSRConfig)}


def dinosr_base(**overrides: Any) -> DinoSRConfig:
    """DinoSR Base (official base.yaml): 12 x 768 post-LN Transformer, K=8 codebooks of V=256."""
    return DinoSRConfig.from_dict(overrides)


def dinosr_tiny(**overrides: Any) -> DinoSRConfig:
    """A few 100k parameters for tests and CPU smoke runs (fwd+bwd well under a second on CPU)."""
    values = dict(
        conv_feature_layers=((64, 10, 5),) + ((64, 3, 2),) * 4 + ((64, 2, 2),) * 2,
        encoder_embed_dim=64,
        encoder_layers=3,
        encoder_attention_heads=4,
        encoder_ffn_embed_dim=128,
        conv_pos=10,
        conv_pos_groups=16,
        pos_conv_depth=2,
        average_top_k_layers=2,
        codebook_size=16,
        ema_anneal_end_step=100,
        freeze_teacher_step=1000,
    )
    values.update(overrides)
    return DinoSRConfig.from_dict(values)
