"""Follow a running training's ESPnet train.log and print a short progress line now and then.

    python -m dinosr_espnet.bin.follow_progress exp/pretrain_dinosr/train.log [--interval 30] [--total N]

Prints ``[<run>] update 240/1000 (24%), loss 4.210, elapsed 3m12s, remaining ~10m08s`` at most every
``--interval`` seconds (``analysis/train_progress.py`` says how it is computed; the plan comes from the
``config.yaml`` beside the log). It stops at the job runner's closing line (``# ended at ...``), on
SIGTERM / SIGINT, or when the process that started it is gone, printing the newest line it held back.
``utils/run_job.sh`` runs it beside a job when ``JOB_PROGRESS`` is set (the recipe does so for
training); the full log stays in train.log.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional

END_OF_JOB = "# ended at "   # utils/run_job.sh's last line of a job's log


class _Stop(Exception):
    pass


def _raise_stop(_signal_number, _frame):
    raise _Stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.follow_progress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_log", type=Path, help="the train.log being written")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between two progress lines")
    parser.add_argument("--total", type=int, default=None,
                        help="total updates (default: max_epoch x num_iters_per_epoch / accum_grad of config.yaml)")
    parser.add_argument("--config", type=Path, default=None, help="the run's config.yaml (default: beside the log)")
    parser.add_argument("--label", default=None, help="name of the run in each line (default: the log's dir)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between two reads of the log")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from dinosr_espnet.analysis.train_progress import TrainingProgress

    progress = TrainingProgress(label=args.label or str(args.train_log.parent),
                                config_path=args.config or args.train_log.with_name("config.yaml"),
                                total_updates=args.total, interval_seconds=args.interval)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)

    def say(message: Optional[str]) -> None:
        if message:
            print(f"  {message}", flush=True)

    state = {"position": 0, "partial": b"", "finished": False}

    def read_new_lines() -> None:
        try:
            size = args.train_log.stat().st_size
        except FileNotFoundError:
            return
        if size < state["position"]:          # the log was started again (a new attempt)
            state["position"], state["partial"] = 0, b""
        with open(args.train_log, "rb") as handle:
            handle.seek(state["position"])
            chunk = handle.read()
            state["position"] = handle.tell()
        lines = (state["partial"] + chunk).split(b"\n")
        state["partial"] = lines.pop()        # an unfinished last line waits for the next read
        for line in (raw.decode("utf-8", errors="replace") for raw in lines):
            if line.startswith(END_OF_JOB):
                state["finished"] = True
            say(progress.feed(line))

    try:
        while True:
            read_new_lines()
            if state["finished"] or os.getppid() != parent:   # job over, or its runner is gone
                break
            time.sleep(args.poll)
    except _Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            read_new_lines()                  # what the job wrote just before it ended
        except (OSError, _Stop):
            pass
    except BrokenPipeError:
        return 0
    say(progress.flush())
    return 0


if __name__ == "__main__":
    sys.exit(main())
