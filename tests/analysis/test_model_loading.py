"""Analysis builds its model eager even when the pre-training config.yaml says compile: true."""
from pathlib import Path

from dinosr_espnet.analysis.model_loading import build_model
from dinosr_espnet.nets.compilation import is_compiled
from dinosr_espnet.nets.config import dinosr_tiny


def test_analysis_model_is_eager_whatever_compile_says():
    model_conf = {**dinosr_tiny(compile=True).to_dict(), "espnet_wrapper_option": 1}
    model = build_model("dinosr", model_conf, Path("exp/config.yaml"))
    assert model.config.compile is False
    assert not any(is_compiled(module) for module in model.modules())
