"""Section "model": the DinoSR student against Hugging Face's Data2VecAudioModel, same process.

Both run the same batch: forward (eval, no grad) and a training step (train mode, the same span
mask, forward + backward of a mean-square loss on the last layer, gradients dropped afterwards).
LayerDrop is set to 0 in both so every step does the same work. With ``--compile``, a compiled
twin of the student (same weights) is timed beside them (``compiled.py``).
"""
from dataclasses import dataclass
from typing import Callable, Dict

import torch

from dinosr_espnet.benchmark.compiled import add_compiled_speedups, compile_first, compiled_config
from dinosr_espnet.benchmark.measure import (MATMUL, Measurement, matmul_callable, matmul_flops,
                                             measure_interleaved)
from dinosr_espnet.benchmark.reference import MISSING_TRANSFORMERS, build_reference
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings

MEGABYTE = 1024.0 ** 2


@dataclass
class Batch:
    waveform: torch.Tensor  # [batch, sample]
    lengths: torch.Tensor  # [batch]
    time_mask: torch.Tensor  # [batch, frame], True = masked

    @property
    def audio_seconds(self) -> float:
        return float(self.lengths.sum()) / 16000.0


def model_config(settings: BenchmarkSettings):
    """DinoSR Base (or tiny with ``--smallest``), LayerDrop off so each step does the same work."""
    from dinosr_espnet.nets import dinosr_base, dinosr_tiny

    factory = dinosr_tiny if settings.smallest else dinosr_base
    return factory(encoder_layerdrop=0.0)


def make_batch(config, student, settings: BenchmarkSettings) -> Batch:
    from dinosr_espnet.nets.masking import compute_span_mask

    generator = torch.Generator().manual_seed(settings.seed)
    samples = int(round(settings.seconds * 16000))
    waveform = torch.randn(settings.batch_size, samples, generator=generator)
    lengths = torch.full((settings.batch_size,), samples, dtype=torch.long)
    frames = int(student.output_lengths(lengths)[0])
    time_mask = compute_span_mask(settings.batch_size, frames, None, config.mask_prob, config.mask_length,
                                  generator=generator)
    device = settings.torch_device
    return Batch(waveform.to(device), lengths.to(device), time_mask.to(device))


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def forward_callable(module: torch.nn.Module, run: Callable[[], torch.Tensor], settings: BenchmarkSettings
                     ) -> Callable[[], None]:
    def forward() -> None:
        module.eval()
        with torch.no_grad(), settings.autocast():
            run()
    return forward


def train_step_callable(module: torch.nn.Module, run: Callable[[], torch.Tensor], settings: BenchmarkSettings
                        ) -> Callable[[], None]:
    def train_step() -> None:
        module.train()
        with settings.autocast():
            loss = run().float().pow(2).mean()
        loss.backward()
        module.zero_grad(set_to_none=True)
    return train_step


def student_runs(student, batch: Batch):
    forward = lambda: student(batch.waveform, batch.lengths).x  # noqa: E731
    masked = lambda: student(batch.waveform, batch.lengths, time_mask=batch.time_mask).x  # noqa: E731
    return forward, masked


def reference_runs(reference, batch: Batch):
    forward = lambda: reference(batch.waveform).last_hidden_state  # noqa: E731
    masked = lambda: reference(batch.waveform, mask_time_indices=batch.time_mask).last_hidden_state  # noqa: E731
    return forward, masked


def run_model_section(settings: BenchmarkSettings, log) -> SectionResult:
    from dinosr_espnet.nets import SpeechEncoder

    result = SectionResult("model")
    device = settings.torch_device
    config, student = seeded_model(SpeechEncoder, settings)
    batch = make_batch(config, student, settings)
    audio = batch.audio_seconds
    result.add("student_parameters", parameter_count(student), "count",
               f"SpeechEncoder ({'dinosr_tiny' if settings.smallest else 'dinosr_base'}())")
    student_forward, student_masked = student_runs(student, batch)
    callables = {
        "student_forward": forward_callable(student, student_forward, settings),
        "student_train_step": train_step_callable(student, student_masked, settings),
    }
    reference = build_reference(config, device)
    if reference is None:
        result.messages.append(MISSING_TRANSFORMERS)
        log(MISSING_TRANSFORMERS)
    else:
        result.add("reference_parameters", parameter_count(reference), "count",
                   "transformers Data2VecAudioModel, matching config")
        reference_forward, reference_masked = reference_runs(reference, batch)
        callables["reference_forward"] = forward_callable(reference, reference_forward, settings)
        callables["reference_train_step"] = train_step_callable(reference, reference_masked, settings)
        result.messages.append(f"reference attention implementation: "
                               f"{getattr(reference.config, '_attn_implementation', 'unknown')}")
    if settings.compile:
        from dinosr_espnet.nets.compilation import compile_encoders

        compiled_student = SpeechEncoder(compiled_config(config, settings)).to(device)
        compiled_student.load_state_dict(student.state_dict())
        compile_encoders(compiled_student, compiled_student.config)
        compiled_forward, compiled_masked = student_runs(compiled_student, batch)
        callables["compiled_student_forward"] = forward_callable(compiled_student, compiled_forward, settings)
        callables["compiled_student_train_step"] = train_step_callable(compiled_student, compiled_masked, settings)
        compile_first(callables, settings, result, log)
    timings = time_with_matmul("model", callables, settings, log,
                               f" ({settings.warmup} warm-up, {settings.repeats} repeats, interleaved)",
                               memory_of=[name for name in callables if name.endswith("train_step")])
    add_throughputs(result, timings, audio)
    if reference is not None:
        for kind in ("forward", "train_step"):
            ratio = timings[f"reference_{kind}"].median_seconds / timings[f"student_{kind}"].median_seconds
            result.add(f"{kind}_speed_ratio_ours_over_reference", ratio, "x", "wall time; target >= 1.0 on CPU")
            # On a shared machine wall time swings with other processes; process CPU time of the
            # single-threaded step is the steadier comparison.
            cpu_ratio = (timings[f"reference_{kind}"].median_cpu_seconds
                         / timings[f"student_{kind}"].median_cpu_seconds)
            result.add(f"{kind}_speed_ratio_ours_over_reference_process_cpu", cpu_ratio, "x",
                       "process CPU time; target >= 1.0 on CPU")
    add_compiled_speedups(result, timings)
    add_flops_and_memory(result, timings, settings)
    return result


def seeded_model(model_class: Callable, settings: BenchmarkSettings, config=None):
    """(config, model on the benchmark device), built right after seeding torch so that every
    section times the same initial weights (``config``: default ``model_config(settings)``)."""
    config = config or model_config(settings)
    torch.manual_seed(settings.seed)
    return config, model_class(config).to(settings.torch_device)


def time_with_matmul(section: str, callables: Dict[str, Callable[[], None]], settings: BenchmarkSettings, log,
                     plan_detail: str = "", **measure_options) -> Dict[str, Measurement]:
    """Time ``callables`` interleaved with the matmul that measures the machine's ceiling (needed by
    ``add_flops_and_memory``), counting FLOPs; ``measure_options`` go to ``measure_interleaved``."""
    callables = {**callables, MATMUL: matmul_callable(settings.torch_device, settings.torch_dtype,
                                                      settings.matmul_side)}
    log(f"{section}: timing {', '.join(callables)} on {settings.batch_size} x {settings.seconds} s{plan_detail}")
    return measure_interleaved(callables, settings.torch_device, settings.warmup, settings.repeats, log,
                               flops=True, **measure_options)


def add_throughputs(result: SectionResult, timings: Dict[str, Measurement], audio_seconds: float) -> None:
    """Audio seconds processed per wall second of every timed step (the matmul is not a step)."""
    for name, measurement in timings.items():
        if name == MATMUL:
            continue
        result.add(f"{name}_audio_seconds_per_second", audio_seconds / measurement.median_seconds, "s/s",
                   f"median of {len(measurement.seconds)}: {measurement.median_seconds:.3f} s per step "
                   f"({measurement.median_cpu_seconds:.3f} s process CPU)")


def add_flops_and_memory(result: SectionResult, timings, settings: BenchmarkSettings) -> None:
    """GFLOP per step, achieved GFLOP/s, MFU (against the matmul timed beside the steps) and peak
    memory of every training step in ``timings``."""
    device = settings.torch_device
    ceiling_flops = matmul_flops(settings.matmul_side) / timings[MATMUL].median_seconds
    result.add("matmul_ceiling_gflop_per_second", ceiling_flops / 1e9, "GFLOP/s",
               f"{settings.matmul_side}^2 {settings.dtype} matmul, interleaved with the steps")
    for name in [name for name in timings if name.endswith("train_step")]:
        flops = timings[name].flops
        achieved = flops / timings[name].median_seconds
        result.add(f"{name}_gflop", flops / 1e9, "GFLOP", "FlopCounterMode, forward + backward")
        result.add(f"{name}_gflop_per_second", achieved / 1e9, "GFLOP/s")
        result.add(f"{name}_mfu", achieved / ceiling_flops, "fraction", "of the measured matmul rate")
        result.add(f"{name}_peak_memory_mb", timings[name].median_peak_bytes / MEGABYTE, "MB",
                   "peak above the level before the step" + (" (CUDA allocated)" if device.type == "cuda"
                                                             else " (resident set)"))
