"""``--compile``: a compiled twin of every benchmarked model, timed interleaved with the eager one.

The twin has the same weights (same seed, or the eager model's state dict) and the config
``compile: true`` with ``--compile_backend`` / ``--compile_mode`` and ``compile_dynamic: false`` (the
benchmark batch has one shape). Its callables are named ``compiled_<eager name>``, so every figure
of the eager step also exists for the compiled one; ``compiled_speedup_<name>`` is eager time over
compiled time in the same process. Compilation happens on a first call before the timed ones
(``compiled_first_call_seconds_<name>``: compile time plus one step).
"""
import time
from typing import Callable, Dict

from dinosr_espnet.benchmark.measure import MATMUL, Measurement, process_cpu_seconds, synchronize
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings

PREFIX = "compiled_"


def compiled_config(config, settings: BenchmarkSettings):
    """``config`` with compilation on, as the benchmark settings ask."""
    return config.replace(compile=True, compile_backend=settings.compile_backend,
                          compile_mode=settings.compile_mode, compile_dynamic=False)


def compile_first(callables: Dict[str, Callable[[], None]], settings: BenchmarkSettings, result: SectionResult,
                  log) -> None:
    """Call every compiled callable once (this compiles it) and report how long that took."""
    for name, function in callables.items():
        if not name.startswith(PREFIX):
            continue
        log(f"compiling {name} ({settings.compile_backend}, mode {settings.compile_mode})")
        start, cpu_start = time.perf_counter(), process_cpu_seconds()
        function()
        synchronize(settings.torch_device)
        seconds = time.perf_counter() - start
        result.add(f"compiled_first_call_seconds_{name[len(PREFIX):]}", seconds, "s",
                   f"compilation + one step ({process_cpu_seconds() - cpu_start:.1f} s process CPU)")
        log(f"compiled {name} in {seconds:.1f} s")


def add_compiled_speedups(result: SectionResult, timings: Dict[str, Measurement]) -> None:
    """``compiled_speedup_<name>`` (wall and process CPU) for every eager/compiled pair in ``timings``."""
    for name, compiled in timings.items():
        eager_name = name[len(PREFIX):]
        if not name.startswith(PREFIX) or eager_name not in timings or eager_name == MATMUL:
            continue
        eager = timings[eager_name]
        result.add(f"compiled_speedup_{eager_name}", eager.median_seconds / compiled.median_seconds, "x",
                   "eager wall / compiled wall, interleaved in the same process")
        result.add(f"compiled_speedup_{eager_name}_process_cpu",
                   eager.median_cpu_seconds / compiled.median_cpu_seconds, "x", "the same in process CPU time")
