"""Section "codebook": the full DinoSR training step against the student-only step.

Full step = ``DinoSRModel.forward`` (student forward on the masked input, EMA-teacher forward on
the unmasked features, instance norm, codebook assignment + EMA update, K heads, loss) +
backward + ``on_optimizer_step()`` (the EMA teacher step); no optimizer. Student-only step = the
same student on the same masked batch, forward + backward of a mean-square loss. Their ratio is
the DinoSR overhead. Codebooks and the teacher are found by class and timed through wrapped
methods during the timed DinoSR steps (a clock read per call; on CUDA also a synchronize).
With ``--compile``, the same figures for a compiled twin (``compiled_*``, see ``compiled.py``).
"""
import statistics
from typing import List

import torch

from dinosr_espnet.benchmark.compiled import PREFIX, add_compiled_speedups, compile_first, compiled_config
from dinosr_espnet.benchmark.measure import SectionTimer
from dinosr_espnet.benchmark.model_section import (add_flops_and_memory, add_throughputs, make_batch,
                                                   parameter_count, seeded_model, time_with_matmul,
                                                   train_step_callable)
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings

# part name -> (class name, method names): the methods whose wall time is attributed to the part
PARTS = {
    "codebook_assign": ("OnlineCodebooks", ("assign",)),
    "codebook_update": ("OnlineCodebooks", ("batch_statistics", "update")),
    "teacher_forward": ("EMATeacher", ("layer_targets",)),
    "ema_teacher_step": ("EMATeacher", ("step",)),
}


def instrument(model: torch.nn.Module, device: torch.device) -> (SectionTimer, List[str]):
    """Wrap the methods of ``PARTS`` on every matching submodule; returns the timer and what was missed."""
    timer = SectionTimer(device)
    missing = []
    for part, (class_name, method_names) in PARTS.items():
        owners = [module for module in model.modules() if type(module).__name__ == class_name]
        wrapped = False
        for owner in owners:
            for method_name in method_names:
                if callable(getattr(owner, method_name, None)):
                    timer.wrap_method(part, owner, method_name)
                    wrapped = True
        if not wrapped:
            missing.append(f"{part} ({class_name}.{'/'.join(method_names)})")
    return timer, missing


def dinosr_step_callable(model, batch, settings: BenchmarkSettings):
    def dinosr_step() -> None:
        model.train()
        with settings.autocast():
            output = model(batch.waveform, batch.lengths)
        output.loss.backward()
        model.zero_grad(set_to_none=True)
        model.on_optimizer_step()
    return dinosr_step


def run_training_section(settings: BenchmarkSettings, log) -> SectionResult:
    from dinosr_espnet.nets import DinoSRModel

    result = SectionResult("codebook")
    device = settings.torch_device
    config, model = seeded_model(DinoSRModel, settings)
    batch = make_batch(config, model.student, settings)
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    result.add("dinosr_trainable_parameters", trainable, "count", "student + heads")
    result.add("dinosr_total_parameters", parameter_count(model), "count", "incl. the EMA teacher")
    callables = {
        "dinosr_train_step": dinosr_step_callable(model, batch, settings),
        "student_only_train_step": train_step_callable(
            model.student, lambda: model.student(batch.waveform, batch.lengths, time_mask=batch.time_mask).x,
            settings),
    }
    timer, missing = instrument(model, device)
    timers = {"": timer}
    if settings.compile:
        compiled_model = seeded_model(DinoSRModel, settings, compiled_config(config, settings))[1]
        callables[PREFIX + "dinosr_train_step"] = dinosr_step_callable(compiled_model, batch, settings)
        callables[PREFIX + "student_only_train_step"] = train_step_callable(
            compiled_model.student,
            lambda: compiled_model.student(batch.waveform, batch.lengths, time_mask=batch.time_mask).x, settings)
        compile_first(callables, settings, result, log)
        timers[PREFIX] = instrument(compiled_model, device)[0]
    try:
        timings = time_with_matmul(
            "codebook", callables, settings, log,
            observers={f"{prefix}dinosr_train_step": part_timer for prefix, part_timer in timers.items()},
            memory_of=[name for name in callables if name.endswith("train_step")])
    finally:
        for part_timer in timers.values():
            part_timer.remove()
    add_throughputs(result, timings, batch.audio_seconds)
    for prefix, part_timer in timers.items():
        add_overheads(result, timings, part_timer, prefix)
    for part in missing:
        result.messages.append(f"not yet measurable: {part} not found in DinoSRModel")
    add_compiled_speedups(result, timings)
    add_flops_and_memory(result, timings, settings)
    return result


def add_overheads(result: SectionResult, timings, timer: SectionTimer, prefix: str = "") -> None:
    """DinoSR step against the student-only step, and its parts' fractions (``prefix`` ``compiled_``
    for the compiled twin)."""
    full, student_only = timings[f"{prefix}dinosr_train_step"], timings[f"{prefix}student_only_train_step"]
    result.add(f"{prefix}dinosr_overhead_ratio", full.median_seconds / student_only.median_seconds, "x",
               "full step / student-only step, wall time; target <= 1.3")
    result.add(f"{prefix}dinosr_overhead_ratio_process_cpu",
               full.median_cpu_seconds / student_only.median_cpu_seconds, "x", "the same in process CPU time")
    result.add(f"{prefix}dinosr_flop_ratio", full.flops / student_only.flops, "x",
               "FLOPs of the full step / student-only step")
    fractions = {part: statistics.median(values) for part, values in getattr(timer, "fractions", {}).items()}
    for part, fraction in fractions.items():
        result.add(f"{prefix}{part}_fraction_of_step", fraction, "fraction", "median over the timed steps")
    if {"codebook_assign", "codebook_update", "ema_teacher_step"} <= set(fractions):
        combined = fractions["codebook_assign"] + fractions["codebook_update"] + fractions["ema_teacher_step"]
        result.add(f"{prefix}codebooks_plus_ema_fraction_of_step", combined, "fraction", "target < 0.05")
