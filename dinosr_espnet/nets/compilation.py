"""Optional ``torch.compile`` of the encoders (config ``compile``, off by default: the eager path).

What is compiled, in place (``nn.Module.compile``: parameter names and checkpoints are unchanged):
the front end (``FeatureExtractor``: its channel LayerNorms, transposes and GELUs fuse into
few kernels; or the log-mel ``FbankFrontEnd``), the positional convolution, and every Transformer ``EncoderLayer`` of the student
and of the EMA teacher. Why per layer and not the whole ``TransformerEncoder``: LayerDrop decides
in Python which layers run, and the layer results are collected in a list; per layer, those
decisions stay eager and all layers reuse the same graphs (one per input shape and mode: student
training with gradient, teacher in eval without).

Shapes: pre-training batches have no padding, but every batch has its own crop length. With
``compile_dynamic: None`` (torch's default) the first shape compiles a static graph and a second
one a dynamic-shape graph; for static graphs per shape (what CUDA graphs and the flash kernel
like best) bucket the crop length (``--crop_bucket_frames`` of the pre-training task) and set
``compile_dynamic: false``. Each bucket then costs one compilation, once, and two cache entries
per compiled module type (student training, teacher eval); Dynamo keeps 8 entries per function by
default and runs the rest eager, so ``compile_dynamic: false`` raises ``recompile_limit`` to
``STATIC_RECOMPILE_LIMIT`` (32 buckets, e.g. 2-20 s at ``--crop_bucket_frames 32`` or more).

Numerics: the compiled graphs compute the same functions; inductor may reorder floating-point
reductions (differences at rounding level) and draws dropout masks from its own random stream,
so with dropout a compiled run is not bit-identical to an eager one with the same seed
(``tests/nets/test_compilation.py`` compares loss, gradients and codebook update without dropout).

The model must be compiled after the teacher is copied from the student (``copy.deepcopy`` of a
compiled module would keep calling the original's compiled function), so the models call
``compile_encoders`` at the end of their constructors.
"""
from typing import List

from torch import nn

from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.nets.fbank_frontend import FbankFrontEnd
from dinosr_espnet.nets.feature_extractor import FeatureExtractor
from dinosr_espnet.nets.transformer import ConvolutionalPositionalEmbedding, EncoderLayer

COMPILED_MODULE_TYPES = (FeatureExtractor, FbankFrontEnd, ConvolutionalPositionalEmbedding, EncoderLayer)
STATIC_RECOMPILE_LIMIT = 64


def compile_encoders(model: nn.Module, config: DinoSRConfig) -> List[str]:
    """Compile every front end, positional convolution and Transformer layer inside ``model`` when
    ``config.compile``; returns the names of the compiled submodules (empty when off).

    Compilation itself is lazy (at the first call); an unknown ``compile_backend`` is reported here,
    naming the config key.
    """
    if not config.compile:
        return []
    import torch._dynamo

    backends = torch._dynamo.list_backends(exclude_tags=())
    if config.compile_backend not in backends:
        raise ValueError(f"compile_backend {config.compile_backend!r} is not a torch.compile backend; "
                         f"available: {sorted(backends)}")
    if config.compile_dynamic is False:  # one graph per crop bucket (module docstring)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, STATIC_RECOMPILE_LIMIT)
    options = dict(backend=config.compile_backend, dynamic=config.compile_dynamic)
    if config.compile_mode is not None:
        options["mode"] = config.compile_mode
    compiled = []
    for name, module in model.named_modules():
        if isinstance(module, COMPILED_MODULE_TYPES):
            module.compile(**options)
            compiled.append(name)
    return compiled


def is_compiled(module: nn.Module) -> bool:
    """True when ``module`` was compiled in place (``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None

