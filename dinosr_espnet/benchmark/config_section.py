"""Section "config": the pre-training step of one model config against variants of it, in one process.

``--model_config`` names a pre-training YAML (its ``model`` and ``model_conf``; default the CPU demo's
``conf/pretrain_dinosr_demo.yaml``); each ``--config_variant 'NAME:key=value;key=value'`` is the same
``model_conf`` with those fields replaced (values read as YAML). Every model takes the full training step
of section "codebook" (student, EMA teacher, loss, backward, teacher step; no optimizer) on the same
batch of ``--batch_size`` x ``--seconds`` of audio, timed interleaved with the others, and each variant is
reported as the ratio of its step time to the config's. Not among the default sections (``--sections
config``). Example (the demo's 25 Hz, dropout-free step against the 50 Hz one with the official dropout)::

    python -m dinosr_espnet.bin.benchmark --sections config --batch_size 8 --seconds 6 \\
        --config_variant '50hz_dropout:fbank_time_strides=[2, 1];mask_length=10;dropout=0.1;attention_dropout=0.1'
"""
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import yaml

from dinosr_espnet.benchmark.model_section import add_flops_and_memory, add_throughputs, make_batch, time_with_matmul
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings
from dinosr_espnet.benchmark.training_section import dinosr_step_callable
from dinosr_espnet.nets import SSL_MODELS, DinoSRConfig

CONFIG_STEP = "config_train_step"
REPO_ROOT = Path(__file__).resolve().parents[2]


class ConfigVariantError(ValueError):
    """A ``--model_config`` or ``--config_variant`` that does not describe a model."""


def parse_variant(text: str) -> Tuple[str, Dict[str, object]]:
    """``'NAME:key=value;key=value'`` -> ``(NAME, {key: YAML value})``; ConfigVariantError naming the text."""
    name, separator, body = text.partition(":")
    if not separator or not name.strip() or not name.strip().replace("_", "").isalnum():
        raise ConfigVariantError(f"--config_variant {text!r}: expected NAME:key=value;key=value with NAME made "
                                 "of letters, digits and _")
    overrides = {}
    for item in filter(None, (part.strip() for part in body.split(";"))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigVariantError(f"--config_variant {text!r}: {item!r} is not key=value")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ConfigVariantError(f"--config_variant {text!r}: value of {key.strip()!r}: {error}") from None
    if not overrides:
        raise ConfigVariantError(f"--config_variant {text!r}: no key=value after the name")
    return name.strip(), overrides


def load_model_config(path: str) -> Tuple[str, Dict[str, object]]:
    """``(model name, model_conf)`` of a pre-training YAML."""
    candidate = Path(path)
    if not candidate.is_absolute() and not candidate.exists() and (REPO_ROOT / candidate).exists():
        candidate = REPO_ROOT / candidate   # the default names the repository's conf/ from any directory
    try:
        document = yaml.safe_load(candidate.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigVariantError(f"--model_config {path}: {error}") from None
    if not isinstance(document, dict) or document.get("model", "dinosr") not in SSL_MODELS:
        raise ConfigVariantError(f"--model_config {path}: expected a pre-training config with model: "
                                 f"{' or '.join(SSL_MODELS)} and a model_conf mapping")
    return document.get("model", "dinosr"), dict(document.get("model_conf") or {})


def build_models(settings: BenchmarkSettings) -> List[Tuple[str, torch.nn.Module]]:
    """``[(step name, model)]``: the config, then each variant; LayerDrop off so every step does the same work."""
    model_name, model_conf = load_model_config(settings.model_config)
    entries = [(CONFIG_STEP, {})] + [(f"variant_{name}_train_step", overrides)
                                     for name, overrides in map(parse_variant, settings.config_variants)]
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise ConfigVariantError(f"--config_variant names must differ: {names[1:]}")
    models = []
    for step_name, overrides in entries:
        try:
            config = DinoSRConfig.from_dict({**model_conf, **overrides, "encoder_layerdrop": 0.0})
        except (TypeError, ValueError) as error:
            raise ConfigVariantError(f"{step_name}: {error}") from None
        torch.manual_seed(settings.seed)
        models.append((step_name, SSL_MODELS[model_name](config).to(settings.torch_device)))
    return models


def run_config_section(settings: BenchmarkSettings, log) -> SectionResult:
    result = SectionResult("config")
    models = build_models(settings)
    config_model = models[0][1]
    batch = make_batch(config_model.config, config_model.student, settings)   # the DinoSR step masks by itself
    callables = {name: dinosr_step_callable(model, batch, settings) for name, model in models}
    for name, model in models:
        stride = model.config.frame_window_and_stride[1]
        result.messages.append(f"{name}: {16000 / stride:g} Hz frames")
    timings = time_with_matmul("config", callables, settings, log,
                               f" ({settings.warmup} warm-up, {settings.repeats} repeats, interleaved)",
                               memory_of=list(callables))
    add_throughputs(result, timings, batch.audio_seconds)
    reference = timings[CONFIG_STEP]
    for name, _ in models[1:]:
        result.add(f"{name}_time_ratio_over_config", timings[name].median_seconds / reference.median_seconds, "x",
                   "wall time per step, variant / config")
        result.add(f"{name}_time_ratio_over_config_process_cpu",
                   timings[name].median_cpu_seconds / reference.median_cpu_seconds, "x", "the same in process CPU time")
    add_flops_and_memory(result, timings, settings)
    return result
