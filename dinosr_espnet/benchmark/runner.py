"""Runs the chosen sections and collects their results; a section that cannot run yet says why."""
import time
import traceback
from typing import Callable, Dict, List

import torch

from dinosr_espnet.benchmark.environment import describe_environment
from dinosr_espnet.benchmark.measure import process_cpu_seconds
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings


SECTION_RUNNERS = {  # section -> (module in dinosr_espnet.benchmark, function)
    "model": ("model_section", "run_model_section"),
    "codebook": ("training_section", "run_training_section"),
    "data": ("data_section", "run_data_section"),
    "decode": ("decode_section", "run_decode_section"),
    "config": ("config_section", "run_config_section"),
}


def _section_runner(section: str) -> Callable:
    import importlib

    module_name, function_name = SECTION_RUNNERS[section]
    module = importlib.import_module(f"dinosr_espnet.benchmark.{module_name}")
    return getattr(module, function_name)


def not_yet_measurable(section: str, reason: str) -> SectionResult:
    return SectionResult(section, status=f"not yet measurable: {reason}")


def run_benchmark(settings: BenchmarkSettings, log: Callable[[str], None] = print
                  ) -> (Dict[str, object], List[SectionResult]):
    """Machine description and one ``SectionResult`` per requested section, in order."""
    device = settings.torch_device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {settings.device}: torch sees no CUDA device on this machine")
    environment = describe_environment(device)
    cpu_start, wall_start = process_cpu_seconds(), time.perf_counter()
    results = []
    for section in settings.sections:
        start = time.perf_counter()
        log(f"== section {section}")
        try:
            result = _section_runner(section)(settings, log)
        except ImportError as error:  # a part of the project not written yet
            log(traceback.format_exc())
            result = not_yet_measurable(section, f"{type(error).__name__}: {error}")
        log(f"== section {section} done in {time.perf_counter() - start:.1f} s ({result.status})")
        results.append(result)
    # With 1 torch thread, a share well below 1 means other processes took the cores (loaded machine).
    environment["process_cpu_share_of_wall"] = round(
        (process_cpu_seconds() - cpu_start) / max(time.perf_counter() - wall_start, 1e-9), 3)
    return environment, results
