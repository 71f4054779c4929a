"""config ``compile``: the compiled DinoSR step equals the eager one (loss, gradients, codebooks, EMA).

The compiled model runs with ``compile_backend: aot_eager``: Dynamo captures the graphs and AOT
Autograd traces forward and backward (what inductor would then turn into kernels), without code
generation. Why not inductor here: its C++ code generation for the three graphs of the tiny model
took ~100 s of CPU (~5 min wall) on the shared 2-core build machine, far beyond a unit test.
``DINOSR_TEST_INDUCTOR=1`` runs the inductor variant as well (dropout off: inductor draws its own
random numbers).
"""
import os
import shutil

import pytest
import torch
from nets_test_utils import random_batch

from dinosr_espnet.nets.compilation import compile_encoders, is_compiled
from dinosr_espnet.nets.config import dinosr_tiny
from dinosr_espnet.nets.dinosr import DinoSRModel
from dinosr_espnet.nets.feature_extractor import FeatureExtractor
from dinosr_espnet.nets.transformer import ConvolutionalPositionalEmbedding, EncoderLayer


def build_pair(**overrides):
    """An eager and a compiled DinoSRModel with the same initial weights."""
    config = dinosr_tiny(encoder_layerdrop=0.0, **overrides)
    torch.manual_seed(0)
    eager = DinoSRModel(config)
    torch.manual_seed(0)
    compiled = DinoSRModel(config.replace(compile=True))
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def train_step(model, waveform, lengths, seed):
    """One step as in pre-training: forward (codebook update inside), backward, EMA teacher step."""
    model.train()
    torch.manual_seed(seed)  # the span mask and the dropout masks
    output = model(waveform, lengths)
    output.loss.backward()
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()
                 if parameter.grad is not None}
    model.zero_grad(set_to_none=True)
    with torch.no_grad():  # a stand-in optimizer step, so that the EMA step sees a changed student
        for name, parameter in model.student.named_parameters():
            if name in {n[len("student."):] for n in gradients if n.startswith("student.")}:
                parameter.sub_(0.1 * gradients[f"student.{name}"])
    model.on_optimizer_step()
    return output, gradients


def assert_states_equal(first, second, rtol, atol):
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for key in first_state:
        torch.testing.assert_close(second_state[key], first_state[key], rtol=rtol, atol=atol, msg=key)


def compare_steps(eager, compiled, steps, rtol, atol):
    waveform, lengths = random_batch([12000, 12000], seed=3)  # crop-to-shortest batch: no padding
    for step in range(steps):
        eager_output, eager_gradients = train_step(eager, waveform, lengths, seed=10 + step)
        compiled_output, compiled_gradients = train_step(compiled, waveform, lengths, seed=10 + step)
        torch.testing.assert_close(compiled_output.loss, eager_output.loss, rtol=rtol, atol=atol)
        assert compiled_output.stats["target_ppl"] == pytest.approx(eager_output.stats["target_ppl"], rel=1e-5)
        assert eager_gradients.keys() == compiled_gradients.keys() and len(eager_gradients) > 20
        for name, gradient in eager_gradients.items():
            torch.testing.assert_close(compiled_gradients[name], gradient, rtol=rtol, atol=atol, msg=name)
    # codebook sums/counts (updated in the forward) and the EMA teacher after the steps
    assert_states_equal(eager, compiled, rtol, atol)


def test_compile_is_off_by_default_and_the_eager_modules_stay_plain():
    model = DinoSRModel(dinosr_tiny())
    assert not any(is_compiled(module) for module in model.modules())


def test_compile_covers_front_end_positional_convolution_and_every_layer_of_student_and_teacher():
    model = DinoSRModel(dinosr_tiny(compile=True, compile_backend="aot_eager"))
    compiled = [module for module in model.modules() if is_compiled(module)]
    layers = 2 * model.config.encoder_layers
    assert sum(isinstance(module, EncoderLayer) for module in compiled) == layers
    assert sum(isinstance(module, ConvolutionalPositionalEmbedding) for module in compiled) == 2
    assert sum(isinstance(module, FeatureExtractor) for module in compiled) == 1
    # in place: the checkpoint keys are those of the eager model
    assert model.state_dict().keys() == DinoSRModel(dinosr_tiny()).state_dict().keys()


@pytest.mark.timeout(240)
def test_compiled_steps_equal_eager_steps_with_dropout():
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, compiled = build_pair(compile_backend="aot_eager", compile_dynamic=False)
    assert compiled.config.dropout > 0 and compiled.config.attention_dropout > 0
    compare_steps(eager, compiled, steps=2, rtol=1e-5, atol=1e-6)
    counters = torch._dynamo.utils.counters
    # really compiled: front end, positional convolution, student layer, teacher positional
    # convolution and layer (eval, no grad) are separate graphs; no graph break inside them
    assert counters["stats"]["unique_graphs"] >= 5
    assert not counters["graph_break"], dict(counters["graph_break"])


@pytest.mark.skipif(os.environ.get("DINOSR_TEST_INDUCTOR") != "1" or shutil.which("g++") is None,
                    reason="inductor code generation takes minutes of CPU; set DINOSR_TEST_INDUCTOR=1 "
                           "(needs a C++ compiler)")
@pytest.mark.timeout(1800)
def test_inductor_steps_equal_eager_steps_without_dropout():
    import torch._dynamo

    torch._dynamo.reset()
    eager, compiled = build_pair(compile_backend="inductor", compile_dynamic=False, dropout=0.0,
                                 attention_dropout=0.0, activation_dropout=0.0)
    compare_steps(eager, compiled, steps=2, rtol=1e-4, atol=1e-5)


def test_static_shapes_raise_the_recompile_limit_for_crop_buckets(monkeypatch):
    import torch._dynamo

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)
    compile_encoders(torch.nn.Linear(2, 2), dinosr_tiny(compile=True, compile_backend="eager"))
    assert torch._dynamo.config.recompile_limit == 8  # dynamic None: torch's default stays
    compile_encoders(torch.nn.Linear(2, 2), dinosr_tiny(compile=True, compile_backend="eager",
                                                        compile_dynamic=False))
    assert torch._dynamo.config.recompile_limit >= 64


def test_unknown_backend_and_mode_are_named():
    with pytest.raises(ValueError, match="compile_backend 'no_such_backend'"):
        compile_encoders(torch.nn.Linear(2, 2), dinosr_tiny(compile=True, compile_backend="no_such_backend"))
    with pytest.raises(ValueError, match="compile_mode"):
        dinosr_tiny(compile_mode="fastest")
