"""Eager against ``compile: true``: the 20-step numerical comparison and the top kernels (issue 17).

1. ``--steps`` pre-training steps on a fixed batch with fixed span masks, without dropout: fp32
   eager, ``--dtype`` eager and ``--dtype`` compiled (``benchmark/compile_numerics.py``); the
   compiled loss, target_ppl and codebook counts must stay within ``--tolerance_factor`` x the
   eager-vs-fp32 difference, and the fp32 islands fp32. Exit status 1 when they do not.
2. With ``--profile_steps N`` (default 3; 0 = off): torch.profiler over N full DinoSR steps
   (the benchmark's model, dropout on) of the eager and of the compiled model, top ops/kernels.

Throughput, MFU and peak memory come from ``python -m dinosr_espnet.bin.benchmark --compile``.

Examples:
  python -m dinosr_espnet.bin.compare_compiled --smallest --compile_backend aot_eager --steps 3
  python -m dinosr_espnet.bin.compare_compiled --device cuda --dtype bf16 --batch_size 8 --seconds 15
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

from dinosr_espnet.benchmark.settings import DTYPES, BenchmarkSettings


def build_parser() -> argparse.ArgumentParser:
    defaults = BenchmarkSettings()
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.compare_compiled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=defaults.device, help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES),
                        help="autocast dtype of the eager and compiled runs (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size, help="(default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (default: %(default)s)")
    parser.add_argument("--tolerance_factor", type=float, default=3.0,
                        help="allowed compiled-vs-eager difference in units of eager-vs-fp32 (default: %(default)s)")
    parser.add_argument("--profile_steps", type=int, default=3, help="profiled steps; 0 = no profile")
    parser.add_argument("--smallest", action="store_true", help="dinosr_tiny() instead of DinoSR Base")
    parser.add_argument("--compile_backend", default=defaults.compile_backend, help="(default: %(default)s)")
    parser.add_argument("--compile_mode", default=defaults.compile_mode, help="(default: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_json", type=Path, default=None)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    settings = BenchmarkSettings(device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                 seconds=args.seconds, smallest=args.smallest, seed=args.seed, compile=True,
                                 compile_backend=args.compile_backend, compile_mode=args.compile_mode)
    if settings.torch_device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device on this machine")
    from dinosr_espnet.benchmark import compile_numerics, kernel_profile

    start = time.perf_counter()
    log = lambda message: print(f"[compare_compiled {time.perf_counter() - start:6.1f} s] {message}",  # noqa: E731
                                file=sys.stderr, flush=True)
    report = compile_numerics.compare(settings, steps=args.steps, tolerance_factor=args.tolerance_factor, log=log)
    output = {"settings": settings.to_dict(), "numerics": compile_numerics.report_to_dict(report)}
    print(f"## {args.steps} steps, {settings.batch_size} x {settings.seconds} s, {args.dtype}: eager vs compiled "
          f"({args.compile_backend}, mode {args.compile_mode})\n")
    print(compile_numerics.to_markdown(report))
    if args.profile_steps > 0:
        from dinosr_espnet.benchmark.compiled import compiled_config
        from dinosr_espnet.benchmark.model_section import make_batch, model_config, seeded_model
        from dinosr_espnet.benchmark.training_section import dinosr_step_callable
        from dinosr_espnet.nets import DinoSRModel

        output["profiles"] = {}
        eager_config = model_config(settings)
        for name, config in (("eager", eager_config), ("compiled", compiled_config(eager_config, settings))):
            model = seeded_model(DinoSRModel, settings, config)[1]
            batch = make_batch(config, model.student, settings)
            log(f"profiling {args.profile_steps} steps of the {name} model")
            profile = kernel_profile.profile_step(dinosr_step_callable(model, batch, settings), settings.torch_device,
                                                  steps=args.profile_steps)
            output["profiles"][name] = profile
            print("\n" + kernel_profile.to_markdown(f"{name} full DinoSR step", profile))
            del model
    if args.output_json:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    log(f"done; numerics {'passed' if report.passed else 'FAILED'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
