"""Does ``compile: true`` change what DinoSR pre-training computes? (issue 17's numerical check)

Three runs of ``steps`` pre-training steps (forward, backward, Adam, EMA teacher step) from the
same initial weights on one fixed batch, with the same span masks (torch is reseeded before each
step; the masks are drawn before anything else) and without dropout or LayerDrop (inductor draws
dropout masks from its own random stream, which would make the runs incomparable):

- ``eager_fp32``: the eager model in fp32;
- ``eager``: the eager model under ``--dtype`` autocast (bf16 on a GPU);
- ``compiled``: the compiled model under the same autocast.

Per step: loss, target_ppl and the codebook counts ``[K, V]``. The compiled run passes when its
distance to ``eager`` is within ``tolerance_factor`` x the distance of ``eager`` to
``eager_fp32`` (the bf16 noise), step by step (loss and target_ppl; counts as the largest
per-codeword difference over the whole run). On fp32 the reference distance is 0, so the check
falls back to ``fp32_tolerance``. The fp32 islands are checked after the run: codebook buffers
and the teacher are fp32, the heads' log-softmax is fp32 (a forward under autocast).
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List

import torch

from dinosr_espnet.benchmark.settings import BenchmarkSettings


@dataclass
class StepRecord:
    loss: float
    target_ppl: float
    counts: torch.Tensor  # [K, V] codebook counts after the step (cpu, fp32)


@dataclass
class NumericsReport:
    runs: Dict[str, List[StepRecord]] = field(default_factory=dict)
    figures: Dict[str, float] = field(default_factory=dict)
    fp32_islands: Dict[str, bool] = field(default_factory=dict)
    passed: bool = False


def numerics_config(settings: BenchmarkSettings):
    from dinosr_espnet.nets import dinosr_base, dinosr_tiny

    factory = dinosr_tiny if settings.smallest else dinosr_base
    return factory(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0)


def run_steps(model, waveform: torch.Tensor, lengths: torch.Tensor, steps: int, autocast, seed: int
              ) -> List[StepRecord]:
    """``steps`` training steps; the span masks of step ``i`` come from seed ``seed + i``."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=5e-4)
    records = []
    model.train()
    for step in range(steps):
        torch.manual_seed(seed + step)
        with autocast():
            output = model(waveform, lengths)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.on_optimizer_step()
        records.append(StepRecord(float(output.loss.detach()), float(output.stats["target_ppl"]),
                                  model.codebooks.counts.detach().float().cpu().clone()))
    return records


def check_fp32_islands(model, waveform: torch.Tensor, lengths: torch.Tensor, autocast) -> Dict[str, bool]:
    """Codebooks, teacher, its targets and the heads' log-softmax stay fp32 under autocast."""
    from torch.nn import functional

    log_softmax_inputs = []
    original = functional.log_softmax

    def recording(input, *args, **kwargs):
        log_softmax_inputs.append(input.dtype)
        return original(input, *args, **kwargs)

    model.eval()  # no codebook update in this check
    functional.log_softmax = recording
    try:
        with torch.no_grad(), autocast():
            student_output, time_mask, targets = model.encode(waveform, lengths)
            model.compute_loss(student_output, time_mask, targets)
    finally:
        functional.log_softmax = original
        model.train()
    return {
        "codebook_buffers_fp32": all(buffer.dtype == torch.float32 for buffer in model.codebooks.buffers()),
        "teacher_parameters_fp32": all(p.dtype == torch.float32 for p in model.teacher.parameters()),
        "teacher_targets_fp32": all(target.dtype == torch.float32 for target in targets),
        "head_log_softmax_fp32": bool(log_softmax_inputs) and all(d == torch.float32 for d in log_softmax_inputs),
    }


def relative_difference(first: float, second: float) -> float:
    return abs(first - second) / max(abs(second), 1e-12)


def compare(settings: BenchmarkSettings, steps: int = 20, tolerance_factor: float = 3.0,
            fp32_tolerance: float = 1e-4, log=print) -> NumericsReport:
    """The three runs of the module docstring and their comparison."""
    from dinosr_espnet.benchmark.compiled import compiled_config
    from dinosr_espnet.benchmark.model_section import make_batch
    from dinosr_espnet.benchmark.settings import BenchmarkSettings as Settings
    from dinosr_espnet.nets import DinoSRModel

    device = settings.torch_device
    config = numerics_config(settings)
    torch.manual_seed(settings.seed)
    initial = DinoSRModel(config).to(device)
    batch = make_batch(config, initial.student, settings)
    fp32 = Settings(**{**settings.__dict__, "dtype": "fp32"})
    report = NumericsReport()
    plans = [("eager_fp32", config, fp32.autocast), ("eager", config, settings.autocast),
             ("compiled", compiled_config(config, settings), settings.autocast)]
    for name, run_config, autocast in plans:
        torch.manual_seed(settings.seed)
        model = DinoSRModel(run_config).to(device)
        model.load_state_dict(initial.state_dict())
        log(f"numerics: {steps} steps of {name} ({settings.dtype if name != 'eager_fp32' else 'fp32'})")
        report.runs[name] = run_steps(model, batch.waveform, batch.lengths, steps, autocast, settings.seed + 1)
        if name == "compiled":
            report.fp32_islands = check_fp32_islands(model, batch.waveform, batch.lengths, autocast)
    reference, eager, compiled = report.runs["eager_fp32"], report.runs["eager"], report.runs["compiled"]
    passed = True
    for key in ("loss", "target_ppl"):
        noise = [relative_difference(getattr(e, key), getattr(r, key)) for e, r in zip(eager, reference)]
        change = [relative_difference(getattr(c, key), getattr(e, key)) for c, e in zip(compiled, eager)]
        allowed = [max(tolerance_factor * n, fp32_tolerance) for n in noise]
        report.figures[f"{key}_max_relative_difference_eager_vs_fp32"] = max(noise)
        report.figures[f"{key}_max_relative_difference_compiled_vs_eager"] = max(change)
        passed &= all(c <= a for c, a in zip(change, allowed))
    counts_noise = max(float((e.counts - r.counts).abs().max()) for e, r in zip(eager, reference))
    counts_change = max(float((c.counts - e.counts).abs().max()) for c, e in zip(compiled, eager))
    report.figures["codebook_counts_max_difference_eager_vs_fp32"] = counts_noise
    report.figures["codebook_counts_max_difference_compiled_vs_eager"] = counts_change
    total_count = float(eager[-1].counts.sum())
    passed &= counts_change <= max(tolerance_factor * counts_noise, fp32_tolerance * total_count)
    passed &= all(report.fp32_islands.values())
    passed &= all(math.isfinite(record.loss) for run in report.runs.values() for record in run)
    report.passed = bool(passed)
    return report


def to_markdown(report: NumericsReport) -> str:
    lines = ["| step | loss fp32 | loss eager | loss compiled | target_ppl fp32 | target_ppl eager | "
             "target_ppl compiled |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for step, (r, e, c) in enumerate(zip(report.runs["eager_fp32"], report.runs["eager"], report.runs["compiled"])):
        lines.append(f"| {step + 1} | {r.loss:.5f} | {e.loss:.5f} | {c.loss:.5f} | {r.target_ppl:.3f} | "
                     f"{e.target_ppl:.3f} | {c.target_ppl:.3f} |")
    lines += ["", "| figure | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.3e} |" for name, value in report.figures.items()]
    lines += [f"| {name} | {value} |" for name, value in report.fp32_islands.items()]
    lines += ["", f"compiled within bf16 noise of eager: **{'yes' if report.passed else 'NO'}**"]
    return "\n".join(lines)


def report_to_dict(report: NumericsReport) -> dict:
    return {"passed": report.passed, "figures": report.figures, "fp32_islands": report.fp32_islands,
            "runs": {name: [{"loss": r.loss, "target_ppl": r.target_ppl,
                             "active_codewords": float((r.counts > 1e-3).sum())} for r in records]
                     for name, records in report.runs.items()}}
