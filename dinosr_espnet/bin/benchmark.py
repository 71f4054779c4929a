"""Throughput, memory and overheads of dinosr_espnet, against references measured in the same run.

Sections (``--sections``, comma-separated):
  model     DinoSR Base student forward and forward+backward in seconds of audio per second, against
            Hugging Face's Data2VecAudioModel with the same architecture (needs the ``bench`` extra:
            pip install -e '.[bench]'); GFLOP/s and MFU against a large matmul; peak memory.
  codebook  the full DinoSR training step (teacher, student forward/backward, codebooks, heads, EMA)
            against the student-only step; codebooks and EMA teacher step as fractions of it.
  data      reading FLACs + the crop-to-shortest collate, per worker; padding waste of
            length-sorted against random batches.
  decode    real-time factor of greedy and lexicon + KenLM 4-gram decoding at several beams on
            synthetic emissions of known transcripts.
  config    (only when named) the full pre-training step of --model_config's model against each
            --config_variant of it (fields replaced), as time ratios; e.g. the demo's frame rate and dropout.

Every figure is a median over ``--repeats`` after ``--warmup``. Output: a markdown table on
stdout and, with ``--output_json``, the same figures as JSON.

Examples:
  python -m dinosr_espnet.bin.benchmark
  python -m dinosr_espnet.bin.benchmark --smallest --output_json /tmp/bench.json
  python -m dinosr_espnet.bin.benchmark --device cuda --dtype bf16 --batch_size 8 --seconds 15
  python -m dinosr_espnet.bin.benchmark --sections model,codebook --compile     # eager vs compiled
  python -m dinosr_espnet.bin.benchmark --sections config --batch_size 8 --seconds 6 \
      --config_variant '50hz:fbank_time_strides=[2, 1];mask_length=10'
"""
import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.benchmark.settings import DTYPES, OPTIONAL_SECTIONS, SECTIONS, BenchmarkSettings


def build_parser() -> argparse.ArgumentParser:
    defaults = BenchmarkSettings()
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=defaults.device, help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--dtype", default=defaults.dtype, choices=sorted(DTYPES),
                        help="fp32, or bf16/fp16 under autocast (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size,
                        help="utterances per model step (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=defaults.seconds,
                        help="audio seconds per utterance in the model steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="warm-up runs (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="timed runs; figures are their median (default: %(default)s)")
    parser.add_argument("--sections", default=",".join(defaults.sections),
                        help=f"comma-separated subset of {','.join(SECTIONS + OPTIONAL_SECTIONS)} "
                             f"(default: {','.join(SECTIONS)})")
    parser.add_argument("--smallest", action="store_true",
                        help="smoke-test sizes: dinosr_tiny(), 1 repeat, tiny data and decoding sets")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, which follows OMP_NUM_THREADS)")
    parser.add_argument("--matmul_size", type=int, default=defaults.matmul_size,
                        help="side of the square matmul that measures the machine's ceiling "
                             "(default: 2048 on CPU, 8192 on CUDA, 256 with --smallest)")
    parser.add_argument("--data_utterances", type=int, default=defaults.data_utterances,
                        help="FLAC files written and read in the data section (default: %(default)s)")
    parser.add_argument("--data_workers", type=int, default=defaults.data_workers,
                        help="DataLoader workers in the data section; 0 = main process (default: %(default)s)")
    parser.add_argument("--decode_utterances", type=int, default=defaults.decode_utterances,
                        help="synthetic utterances decoded (default: %(default)s)")
    parser.add_argument("--decode_beams", default=",".join(map(str, defaults.decode_beams)),
                        help="lexicon decoder beam sizes (default: %(default)s)")
    parser.add_argument("--kenlm_bin", default=defaults.kenlm_bin,
                        help="directory with KenLM's lmplz (default: %(default)s, relative to the repository)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--compile", action="store_true",
                        help="model and codebook sections: also build each model with compile: true "
                             "(same weights) and time it interleaved with the eager one; figures of "
                             "the compiled twin are prefixed compiled_, compiled_speedup_* = eager / compiled")
    parser.add_argument("--compile_backend", default=defaults.compile_backend,
                        help="torch.compile backend of --compile (default: %(default)s; aot_eager captures "
                             "graphs without generating code)")
    parser.add_argument("--compile_mode", default=defaults.compile_mode,
                        help="torch.compile mode of --compile, e.g. max-autotune-no-cudagraphs, "
                             "reduce-overhead (CUDA graphs) (default: torch's default)")
    parser.add_argument("--model_config", default=defaults.model_config,
                        help="config section: pre-training YAML whose training step is timed (default: %(default)s)")
    parser.add_argument("--config_variant", action="append", default=[], metavar="NAME:key=value;...",
                        help="config section: the same model_conf with these fields replaced (YAML values), timed "
                             "beside it and reported as a ratio; repeatable")
    parser.add_argument("--output_json", type=Path, default=None, help="also write the figures as JSON here")
    return parser


def settings_from_args(args: argparse.Namespace) -> BenchmarkSettings:
    sections = tuple(section.strip() for section in args.sections.split(",") if section.strip())
    unknown = [section for section in sections if section not in SECTIONS + OPTIONAL_SECTIONS]
    if unknown:
        raise SystemExit(f"--sections: unknown {unknown}; choose from {','.join(SECTIONS + OPTIONAL_SECTIONS)}")
    settings = BenchmarkSettings(
        device=args.device, dtype=args.dtype, batch_size=args.batch_size, seconds=args.seconds,
        warmup=args.warmup, repeats=args.repeats, sections=sections, smallest=args.smallest,
        matmul_size=args.matmul_size, data_utterances=args.data_utterances, data_workers=args.data_workers,
        decode_utterances=args.decode_utterances,
        decode_beams=tuple(int(beam) for beam in args.decode_beams.split(",") if beam.strip()),
        kenlm_bin=args.kenlm_bin, seed=args.seed, compile=args.compile, compile_backend=args.compile_backend,
        compile_mode=args.compile_mode, model_config=args.model_config,
        config_variants=tuple(args.config_variant))
    if args.smallest:  # sizes for a smoke test: every figure, none of them meaningful
        settings.batch_size, settings.seconds = min(settings.batch_size, 2), min(settings.seconds, 2.0)
        settings.warmup, settings.repeats = 1, 1
        settings.data_utterances, settings.decode_utterances = 8, 4
    return settings


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    from dinosr_espnet.benchmark.config_section import ConfigVariantError
    from dinosr_espnet.benchmark.report import to_json, to_markdown
    from dinosr_espnet.benchmark.runner import run_benchmark

    start = time.perf_counter()
    log = lambda message: print(f"[benchmark {time.perf_counter() - start:6.1f} s] {message}",  # noqa: E731
                                file=sys.stderr, flush=True)
    try:
        environment, sections = run_benchmark(settings, log)
    except ConfigVariantError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    environment["wall_seconds"] = round(time.perf_counter() - start, 1)
    environment["date_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(to_markdown(environment, settings.to_dict(), sections))
    if args.output_json:
        atomic_write_text(args.output_json, to_json(environment, settings.to_dict(), sections))
        log(f"wrote {args.output_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
