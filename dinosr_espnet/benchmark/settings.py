"""What a benchmark run measures and at which sizes."""
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch

SECTIONS = ("model", "codebook", "data", "decode")   # the default run
OPTIONAL_SECTIONS = ("config",)                        # only when named in --sections
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class BenchmarkSettings:
    device: str = "cpu"
    dtype: str = "fp32"  # fp32, or bf16/fp16 under autocast
    batch_size: int = 1
    seconds: float = 4.0  # audio per utterance for the model sections
    warmup: int = 1
    repeats: int = 3
    sections: Tuple[str, ...] = SECTIONS
    smallest: bool = False  # dinosr_tiny() and tiny data/decoding sizes: a smoke test
    matmul_size: Optional[int] = None  # None: 2048 on CPU, 8192 on CUDA (256 with --smallest)
    data_utterances: int = 48
    data_workers: int = 1
    decode_utterances: int = 12
    decode_beams: Tuple[int, ...] = (50, 500, 1500)
    kenlm_bin: str = "tools/kenlm/bin"
    seed: int = 0
    compile: bool = False  # also time every model step compiled (config compile: true) beside eager
    compile_backend: str = "inductor"
    compile_mode: Optional[str] = None
    model_config: str = "conf/pretrain_dinosr_demo.yaml"  # section "config": the YAML whose step is timed
    config_variants: Tuple[str, ...] = ()  # section "config": NAME:key=value;... overrides of its model_conf

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def matmul_side(self) -> int:
        if self.matmul_size:
            return self.matmul_size
        if self.smallest:
            return 256
        return 8192 if self.torch_device.type == "cuda" else 2048

    def autocast(self):
        """Mixed precision for bf16/fp16; fp32 runs as is."""
        if self.dtype == "fp32":
            return nullcontext()
        return torch.autocast(self.torch_device.type, dtype=self.torch_dtype)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["sections"] = ",".join(self.sections)
        values["decode_beams"] = ",".join(map(str, self.decode_beams))
        values["config_variants"] = list(self.config_variants)
        return values
