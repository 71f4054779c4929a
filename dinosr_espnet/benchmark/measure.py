"""Timing and peak-memory measurement: medians over repeats after warm-up.

CPU peak memory uses the kernel's resident-set high-water mark (``VmHWM``), reset before the
run by writing ``5`` to ``/proc/self/clear_refs`` after ``malloc_trim`` has handed freed heap back
(so memory kept by glibc from earlier steps is not mistaken for headroom); tracemalloc does not
see torch's allocations. Memory is taken on an extra run after the timed ones, so trimming never slows a timed run.
Where the reset is not allowed, the ``resource.getrusage`` maxrss delta is used (it only shows
growth beyond the previous peak, so it may read 0). CUDA uses ``torch.cuda.max_memory_allocated``.
"""
import ctypes
import re
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch


@dataclass
class Measurement:
    """Seconds and peak extra memory (bytes above the level before the run) of every timed run."""

    seconds: List[float] = field(default_factory=list)
    peak_bytes: List[float] = field(default_factory=list)
    flops: Optional[float] = None  # of one call, counted on the first warm-up run when asked
    cpu_seconds: List[float] = field(default_factory=list)  # this process's user + system CPU time per run

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu_seconds(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def median_peak_bytes(self) -> float:
        return statistics.median(self.peak_bytes) if self.peak_bytes else float("nan")


def process_cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads); on a loaded machine it stays
    close to what an idle machine's wall time would be, for single-threaded work."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            match = re.search(rf"^{key}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _release_free_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_cpu_peak() -> bool:
    _release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager: ``.extra_bytes`` = peak memory during the block minus memory before it."""

    def __init__(self, device: torch.device):
        self.device = device
        self.extra_bytes = 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
        elif _reset_cpu_peak() and _proc_status_kib("VmRSS") is not None:
            self.mode = "hwm"
            self.before = _proc_status_kib("VmRSS") * 1024
        else:
            self.mode = "maxrss"
            self.before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            after = torch.cuda.max_memory_allocated(self.device)
        elif self.mode == "hwm":
            after = _proc_status_kib("VmHWM") * 1024
        else:
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.extra_bytes = float(max(after - self.before, 0))


def measure_interleaved(callables: Dict[str, Callable[[], object]], device: torch.device,
                        warmup: int, repeats: int, progress: Optional[Callable[[str], None]] = None,
                        flops: bool = False, observers: Optional[Dict[str, "RunObserver"]] = None,
                        memory_of: Optional[Sequence[str]] = None) -> Dict[str, Measurement]:
    """Time each callable ``repeats`` times after ``warmup`` runs (at least 1 with ``flops``), round-robin.

    With ``flops``, the FLOP count comes from the first warm-up run. Peak memory of the callables
    named in ``memory_of`` comes from one extra run after the timed ones (not the first run, which
    would also carry the process's one-time allocations, such as oneDNN's caches); the timed runs
    carry no instrumentation. ``observers[name]`` is told when each
    timed run of ``name`` starts and how long it took (used to attribute a step to its parts).

    Interleaving (A, B, A, B, ...) rather than (A, A, B, B) lets a change in machine load hit
    every contender alike, which matters on a shared machine.
    """
    results = {name: Measurement() for name in callables}
    observers = observers or {}
    for warmup_run in range(max(warmup, 1 if flops else 0)):
        for name, function in callables.items():
            if warmup_run == 0 and flops:
                results[name].flops = count_flops(function)
            else:
                function()
            synchronize(device)
    for repeat in range(repeats):
        for name, function in callables.items():
            observer = observers.get(name)
            if observer is not None:
                observer.run_started()
            synchronize(device)
            start, cpu_start = time.perf_counter(), process_cpu_seconds()
            function()
            synchronize(device)
            results[name].seconds.append(time.perf_counter() - start)
            results[name].cpu_seconds.append(process_cpu_seconds() - cpu_start)
            if observer is not None:
                observer.run_finished(results[name].seconds[-1])
        if progress is not None:
            progress(f"repeat {repeat + 1}/{repeats}: " + ", ".join(
                f"{name} {results[name].seconds[-1]:.3f} s" for name in callables))
    for name in memory_of or ():
        with PeakMemory(device) as memory:
            callables[name]()
        results[name].peak_bytes.append(memory.extra_bytes)
    return results


class RunObserver:
    """Told about every timed run of one callable."""

    def run_started(self) -> None:
        pass

    def run_finished(self, seconds: float) -> None:
        pass


class SectionTimer(RunObserver):
    """Accumulates wall time spent inside chosen submodules or methods during a step.

    Used to attribute a training step to its parts (codebooks, teacher) without editing them:
    forward hooks time module calls, ``wrap_method`` times a bound method.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.totals: Dict[str, float] = {}
        self._starts: Dict[str, List[float]] = {}
        self._handles = []
        self._restore = []

    def reset(self) -> None:
        self.totals = {name: 0.0 for name in self.totals}

    def run_started(self) -> None:
        self.reset()

    def run_finished(self, seconds: float) -> None:
        """Record each part's share of this run (``fractions[part]``, one value per run)."""
        self.fractions = getattr(self, "fractions", {})
        for name, total in self.totals.items():
            self.fractions.setdefault(name, []).append(total / seconds)

    def _begin(self, name: str) -> None:
        synchronize(self.device)
        self._starts.setdefault(name, []).append(time.perf_counter())

    def _end(self, name: str) -> None:
        synchronize(self.device)
        start = self._starts[name].pop()
        if not self._starts[name]:  # count nested calls of the same part once
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start

    def watch_module(self, name: str, module: torch.nn.Module) -> None:
        self.totals.setdefault(name, 0.0)
        self._handles.append(module.register_forward_pre_hook(lambda *_: self._begin(name)))
        self._handles.append(module.register_forward_hook(lambda *_: self._end(name)))

    def wrap_method(self, name: str, owner: object, method_name: str) -> None:
        self.totals.setdefault(name, 0.0)
        original = getattr(owner, method_name)
        was_own_attribute = method_name in getattr(owner, "__dict__", {})

        def timed(*args, **kwargs):
            self._begin(name)
            try:
                return original(*args, **kwargs)
            finally:
                self._end(name)

        setattr(owner, method_name, timed)
        self._restore.append((owner, method_name, original if was_own_attribute else None))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for owner, method_name, original in reversed(self._restore):
            if original is None:
                delattr(owner, method_name)  # the class attribute shows through again
            else:
                setattr(owner, method_name, original)
        self._handles, self._restore = [], []


def count_flops(function: Callable[[], object]) -> float:
    """FLOPs of one call (matmuls, convolutions, attention; forward and backward if it runs both)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return float(counter.get_total_flops())


MATMUL = "matmul"


def matmul_callable(device: torch.device, dtype: torch.dtype, size: int) -> Callable[[], None]:
    """A ``size`` x ``size`` matmul: timed beside the model steps, it gives the machine's reachable
    FLOP/s under the same load (``matmul_flops``)."""
    left = torch.randn(size, size, device=device).to(dtype)
    right = torch.randn(size, size, device=device).to(dtype)
    return lambda: torch.mm(left, right)


def matmul_flops(size: int) -> float:
    return 2.0 * size ** 3
