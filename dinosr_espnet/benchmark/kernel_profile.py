"""Top kernels of the full DinoSR pre-training step (torch.profiler), eager and compiled.

On CUDA the table is sorted by self GPU time and also gives the step's GPU time against its wall
time: a step whose GPU time is well below its wall time is bound by the host launching kernels.
On CPU it is sorted by self CPU time.
"""
from typing import Callable, Dict, List

import torch

from dinosr_espnet.benchmark.measure import synchronize


def _self_time_us(event, cuda: bool) -> float:
    if cuda:
        for name in ("self_device_time_total", "self_cuda_time_total"):
            if hasattr(event, name):
                return float(getattr(event, name))
        return 0.0
    return float(event.self_cpu_time_total)


def profile_step(step: Callable[[], None], device: torch.device, steps: int = 3, top: int = 15) -> Dict:
    """Profile ``steps`` calls of ``step`` (after one untimed call); the ``top`` ops by self time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    step()
    synchronize(device)
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            step()
        synchronize(device)
    events = [event for event in profiler.key_averages() if _self_time_us(event, cuda) > 0]
    total_us = sum(_self_time_us(event, cuda) for event in events)
    events.sort(key=lambda event: _self_time_us(event, cuda), reverse=True)
    rows: List[Dict] = [{"name": event.key, "calls_per_step": event.count / steps,
                         "ms_per_step": _self_time_us(event, cuda) / steps / 1000.0,
                         "share": _self_time_us(event, cuda) / max(total_us, 1e-9)} for event in events[:top]]
    return {"clock": "self GPU time" if cuda else "self CPU time",
            "ms_per_step": total_us / steps / 1000.0, "top": rows}


def to_markdown(name: str, profile: Dict) -> str:
    lines = [f"{name}: {profile['ms_per_step']:.1f} ms of {profile['clock']} per step", "",
             "| op / kernel | calls per step | ms per step | share |", "|---|---:|---:|---:|"]
    for row in profile["top"]:
        lines.append(f"| `{row['name'][:90]}` | {row['calls_per_step']:.0f} | {row['ms_per_step']:.2f} | "
                     f"{row['share']:.1%} |")
    return "\n".join(lines)
