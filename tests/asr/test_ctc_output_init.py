"""The CTC output layer starts as fairseq's: xavier-uniform weight, zero bias (ESPnet: PyTorch default)."""
import math

import torch

from conftest import REPO_ROOT
from dinosr_espnet.asr.token_list import write_char_token_list


def _build(tmp_path, *extra):
    import dinosr_espnet  # noqa: F401
    from dinosr_espnet.registry import register_now

    register_now()
    from dinosr_espnet.asr.task import DinoSRASRTask

    token_list = write_char_token_list(tmp_path / "tokens.txt")
    args = DinoSRASRTask.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml"), "--token_list", str(token_list),
         "--output_dir", str(tmp_path / "exp"), *extra])
    torch.manual_seed(0)
    return DinoSRASRTask.build_model(args)


def test_ctc_output_layer_is_xavier_uniform_with_zero_bias(tmp_path):
    layer = _build(tmp_path).ctc.ctc_lo
    fan_out, fan_in = layer.weight.shape
    xavier_bound = math.sqrt(6.0 / (fan_in + fan_out))     # torch default would be 1 / sqrt(fan_in)
    assert torch.count_nonzero(layer.bias) == 0
    assert float(layer.weight.detach().abs().max()) <= xavier_bound
    assert float(layer.weight.detach().abs().max()) > 1.0 / math.sqrt(fan_in)   # beyond the default's range
    # uniform(-b, b) has standard deviation b / sqrt(3)
    assert abs(float(layer.weight.detach().std()) - xavier_bound / math.sqrt(3.0)) < 0.1 * xavier_bound / math.sqrt(3.0)


def test_explicit_espnet_init_is_left_alone(tmp_path):
    layer = _build(tmp_path, "--init", "xavier_normal").ctc.ctc_lo
    assert torch.count_nonzero(layer.bias) == 0 and float(layer.weight.detach().abs().max()) > math.sqrt(6.0 / sum(layer.weight.shape))
