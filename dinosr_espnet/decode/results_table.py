"""Stage 7: RESULTS.md in the paper's layout from ``exp/*/decode/<set>/<mode>/score.json``.

Rows = labelled split x initialisation tag, columns = dev-clean, dev-other, test-clean,
test-other, each without LM (``viterbi``) and with the 4-gram (``4gram``); cells are the mean
over seeds with the spread (sample standard deviation) and the number of seeds.
"""
from __future__ import annotations

import datetime
import json
import re
import statistics
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.analysis.report import unit_comparison_lines
from dinosr_espnet.decode.run_summary import command_lines, machine_lines, stage_time_lines

EXP_PATTERN = re.compile(r"^finetune_(?P<tag>.+)_(?P<split>[^_]+)_seed(?P<seed>\d+)$")
SET_ORDER = ["dev_clean", "dev_other", "test_clean", "test_other"]
MODE_ORDER = ["viterbi", "4gram"]
SPLIT_ORDER = ["10m", "1h", "10h", "100h"]
TAG_ORDER = ["scratch", "data2vec", "dinosr", "official"]

# DinoSR, spec 5.2: {split: {set: WER}} with the official 4-gram; [NOTE]-sourced except 100 h.
PAPER_TABLES = {
    "librispeech": {
        "10m": {"test_clean": 7.3, "test_other": 11.8},
        "1h": {"test_clean": 4.6, "test_other": 8.7},
        "10h": {"test_clean": 3.6, "test_other": 7.6},
        "100h": {"dev_clean": 2.3, "dev_other": 6.4, "test_clean": 2.9, "test_other": 6.7},
    }
}


@dataclass(frozen=True)
class Score:
    tag: str
    split: str
    seed: int
    data_set: str
    mode: str
    wer: Optional[float]
    cer: Optional[float]


def collect_scores(exp_root: Path) -> List[Score]:
    """Every ``finetune_<tag>_<split>_seed<seed>/decode/<set>/<mode>/score.json`` under ``exp_root``."""
    scores = []
    for score_file in sorted(Path(exp_root).glob("*/decode/*/*/score.json")):
        mode_dir = score_file.parent
        match = EXP_PATTERN.match(mode_dir.parents[2].name)
        if match is None:
            continue
        values = json.loads(score_file.read_text(encoding="utf-8"))
        scores.append(Score(match["tag"], match["split"], int(match["seed"]), mode_dir.parent.name, mode_dir.name,
                            values.get("wer"), values.get("cer")))
    return scores


def _order(value: str, preferred: List[str]) -> Tuple[int, str]:
    return (preferred.index(value) if value in preferred else len(preferred), value)


def _cell(values: List[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {statistics.stdev(values):.1f} (n={len(values)})"


def _header(sets: List[str], modes: List[str]) -> List[str]:
    columns = [f"{s.replace('_', '-')} {m}" for s in sets for m in modes]
    return ["| split | init | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]


def metric_table(scores: List[Score], metric: str, paper: Optional[Dict[str, Dict[str, float]]]) -> List[str]:
    sets = sorted({s.data_set for s in scores}, key=lambda v: _order(v, SET_ORDER))
    modes = sorted({s.mode for s in scores}, key=lambda v: _order(v, MODE_ORDER))
    cells: Dict[Tuple[str, str, str, str], List[float]] = defaultdict(list)
    for score in scores:
        value = getattr(score, metric)
        if value is not None:
            cells[(score.split, score.tag, score.data_set, score.mode)].append(float(value))
    rows = sorted({(s.split, s.tag) for s in scores}, key=lambda r: (_order(r[0], SPLIT_ORDER), _order(r[1], TAG_ORDER)))
    lines = _header(sets, modes)
    for split, tag in rows:
        lines.append(f"| {split} | {tag} | " + " | ".join(_cell(cells[(split, tag, s, m)]) for s in sets for m in modes) + " |")
        if paper and split in paper and metric == "wer":
            paper_cells = [f"{paper[split][s]:.1f}" if m == "4gram" and s in paper[split] else "-" for s in sets for m in modes]
            lines.append(f"| {split} | DinoSR (paper) | " + " | ".join(paper_cells) + " |")
    return lines


def relative_gain_table(scores: List[Score], metric: str = "wer") -> List[str]:
    """Relative reduction of the mean ``metric`` against the ``scratch`` rows of the same split, in %:
    ``100 * (scratch - init) / scratch`` (positive = better than training from random init)."""
    means: Dict[Tuple[str, str, str, str], List[float]] = defaultdict(list)
    for score in scores:
        value = getattr(score, metric)
        if value is not None:
            means[(score.split, score.tag, score.data_set, score.mode)].append(float(value))
    sets = sorted({s.data_set for s in scores}, key=lambda v: _order(v, SET_ORDER))
    modes = sorted({s.mode for s in scores}, key=lambda v: _order(v, MODE_ORDER))
    rows = sorted({(s.split, s.tag) for s in scores if s.tag != "scratch"},
                  key=lambda r: (_order(r[0], SPLIT_ORDER), _order(r[1], TAG_ORDER)))
    lines = []
    for split, tag in rows:
        cells = []
        for data_set in sets:
            for mode in modes:
                baseline, ours = means.get((split, "scratch", data_set, mode)), means.get((split, tag, data_set, mode))
                if not baseline or not ours or statistics.fmean(baseline) == 0:
                    cells.append("-")
                    continue
                reference = statistics.fmean(baseline)
                cells.append(f"{100 * (reference - statistics.fmean(ours)) / reference:+.1f}")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {split} | {tag} vs scratch | " + " | ".join(cells) + " |")
    return _header(sets, modes) + lines if lines else []


def _provenance(repo_root: Path) -> List[str]:
    from importlib import metadata

    try:
        git_hash = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root, capture_output=True,
                                  text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        git_hash = "unknown"
    versions = []
    for package in ("torch", "torchaudio", "espnet", "flashlight-text", "dinosr_espnet"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- git: {git_hash}", f"- versions: {', '.join(versions)}"]


def write_results(exp_root: Path, output: Path, paper_table: Optional[str] = None,
                  repo_root: Optional[Path] = None, notes: Optional[Path] = None) -> List[Score]:
    """Write RESULTS.md; returns the scores it was made from. ``notes``: a markdown file appended
    as is (a recipe's record of what was tried), read before anything is written."""
    notes_text = Path(notes).read_text(encoding="utf-8").rstrip() if notes is not None else None
    scores = collect_scores(exp_root)
    if not scores:
        raise FileNotFoundError(f"no {exp_root}/finetune_<tag>_<split>_seed<seed>/decode/<set>/<mode>/score.json found")
    if paper_table is not None and paper_table not in PAPER_TABLES:
        raise ValueError(f"unknown --paper_table {paper_table!r}; known: {sorted(PAPER_TABLES)}")
    paper = PAPER_TABLES.get(paper_table) if paper_table else None
    seeds = sorted({s.seed for s in scores})
    lines = ["# Results", "", *_provenance(repo_root or Path(__file__).resolve().parents[2]),
             f"- experiments: {Path(exp_root)}; seeds {seeds}", "",
             "Cells: mean over seeds ± sample standard deviation (n = seeds). `viterbi` = greedy CTC without LM, "
             "`4gram` = lexicon + 4-gram beam search with LM weight / word score tuned on dev-other.", "",
             "## WER (%)", "", *metric_table(scores, "wer", paper), "",
             "## CER (%)", "", *metric_table(scores, "cer", None), ""]
    gains = relative_gain_table(scores, "wer")
    if gains:
        lines += ["## Relative WER reduction against fine-tuning from random init (%)", "",
                  "`100 * (WER scratch - WER init) / WER scratch` on the means over seeds; positive = the "
                  "pre-training helps.", "", *gains, ""]
    units = unit_comparison_lines(exp_root)
    if units:
        lines += ["## Unit discovery (stage 8)", "",
                  "Frame-level phone labels against the units of each target layer: online codebook (teacher), "
                  "student head (argmax), offline k-means (256) on the same features; HuBERT's definitions. "
                  "`random init` = the same architecture with random weights, the baseline.", "", *units, ""]
    lines += ["## How this was run", "", *command_lines(exp_root), *machine_lines(), ""]
    stage_times = stage_time_lines(exp_root)
    if stage_times:
        lines += ["Wall time per stage (all attempts; the stage writing this file is not in it yet):", "",
                  *stage_times, ""]
    if paper:
        lines += ["DinoSR (paper) rows: the paper's WER with the official 4-gram (dinosr_spec.md 5.2; 10m/1h/10h "
                  "from a secondary source, 100h confirmed).", ""]
    if notes_text:
        lines += [notes_text, ""]
    atomic_write_text(output, "\n".join(lines))
    return scores
