"""How a recipe run was made, for RESULTS.md: its commands, the machine, and each stage's wall time.

The recipe template appends one line per run to ``exp/commands.log`` (``date<TAB>stages<TAB>command``)
and one line per stage attempt to ``exp/stage_times.tsv`` (``stage<TAB>seconds<TAB>status<TAB>date``);
an attempt cut short by a kill or a failure is kept, with its status, so the time a run really took adds up.
"""
from __future__ import annotations

import os
import platform
from collections import OrderedDict
from pathlib import Path
from typing import List

STAGE_NAMES = {"1": "data", "2": "format", "3": "pre-train", "4": "fine-tune", "5": "LM",
               "6": "decode", "7": "score", "8": "unit analysis"}


def _read_tsv(path: Path, fields: int) -> List[List[str]]:
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < fields:
            raise ValueError(f"{path}:{number}: expected {fields} tab-separated fields, got {line!r}")
        rows.append(columns)
    return rows


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def machine_lines() -> List[str]:
    """One bullet: OS, CPU model, cores this process may use, memory, GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
        memory = f", {kib / 2 ** 20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "GPU unknown (torch not importable)"
    return [f"- machine: {platform.system()} {platform.release()}, {cpu}, {cores} cores{memory}, {gpu}"]


def command_lines(exp_root: Path) -> List[str]:
    """Bullets with every recorded recipe command, oldest first."""
    rows = _read_tsv(Path(exp_root) / "commands.log", 3)
    return [f"- run {date} ({stages}): `{command}`" for date, stages, command, *_ in rows]


def stage_time_lines(exp_root: Path) -> List[str]:
    """A table of wall time per stage summed over its attempts (killed ones included), and the total."""
    rows = _read_tsv(Path(exp_root) / "stage_times.tsv", 4)
    if not rows:
        return []
    per_stage: "OrderedDict[str, List[List[str]]]" = OrderedDict()
    for row in sorted(rows, key=lambda row: int(row[0])):
        per_stage.setdefault(row[0], []).append(row)
    lines = ["| stage | attempts | wall time |", "|---|---|---|"]
    total = 0.0
    for stage, attempts in per_stage.items():
        seconds = sum(float(attempt[1]) for attempt in attempts)
        total += seconds
        statuses = [attempt[2] for attempt in attempts]
        count = str(len(attempts)) if set(statuses) == {"finished"} else f"{len(attempts)} ({', '.join(statuses)})"
        lines.append(f"| {stage} {STAGE_NAMES.get(stage, '')} | {count} | {_minutes(seconds)} |")
    lines.append(f"| total | | {_minutes(total)} |")
    return lines
