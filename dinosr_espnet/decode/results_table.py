"""Stage 7: RESULTS.md in the paper's layout from ``exp/*/decode/<set>/<mode>/score.json``.

Rows = labelled split x initialisation tag, columns = dev-clean, dev-other, test-clean,
test-other (then any other scored set, e.g. ``train_fit``), each without LM (``viterbi``) and with
the 4-gram (``4gram``); cells are the mean over seeds with the spread (sample standard deviation)
and the number of seeds. Relative-WER tables compare every init with random init (``scratch``), the
pre-trained inits with random init given more updates (``scratch3x``) and DinoSR with data2vec,
whenever those rows exist. Also written: ``RESULTS.json`` beside the table (``results_json``) and,
for each pre-training run, its training curves and codebook health (``analysis.pretraining_report``).
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
from typing import Callable, Dict, List, Optional, Tuple

from dinosr_espnet.analysis.pretraining_report import pretraining_lines
from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.analysis.report import unit_comparison_lines
from dinosr_espnet.decode.results_json import results_rows, write_results_json
from dinosr_espnet.decode.run_summary import command_lines, machine_lines, stage_time_lines

EXP_PATTERN = re.compile(r"^finetune_(?P<tag>.+)_(?P<split>[^_]+)_seed(?P<seed>\d+)$")
SET_ORDER = ["dev_clean", "dev_other", "test_clean", "test_other", "train_fit"]
MODE_ORDER = ["viterbi", "4gram"]
SPLIT_ORDER = ["10m", "1h", "10h", "100h"]
TAG_ORDER = ["scratch", "scratch3x", "data2vec", "dinosr", "dinosr_reseed", "official"]

# Relative-WER sections: (baseline init, which other inits to compare with it, section title, formula note).
COMPARISONS = [
    ("scratch", lambda tag: tag != "scratch", "Relative WER reduction against fine-tuning from random init (%)",
     "`100 * (WER scratch - WER init) / WER scratch` on the means over seeds; positive = the pre-training helps."),
    ("scratch3x", lambda tag: not tag.startswith("scratch"),
     "Relative WER reduction against random init given 3x the fine-tuning updates (%)",
     "`100 * (WER scratch3x - WER init) / WER scratch3x`; positive = the pre-training still helps when random "
     "init gets 3x the updates."),
    ("data2vec", lambda tag: tag.startswith("dinosr"), "DinoSR against data2vec: relative WER reduction (%)",
     "`100 * (WER data2vec - WER DinoSR) / WER data2vec` at equal pre-training updates and batch; positive = "
     "DinoSR is better."),
]

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


def relative_gain_table(scores: List[Score], metric: str = "wer", baseline: str = "scratch",
                        compared: Optional[Callable[[str], bool]] = None) -> List[str]:
    """Relative reduction of the mean ``metric`` against the ``baseline`` rows of the same split, in %:
    ``100 * (baseline - init) / baseline`` (positive = better than the baseline), for every init tag
    other than the baseline for which ``compared(tag)`` holds (default: all)."""
    means: Dict[Tuple[str, str, str, str], List[float]] = defaultdict(list)
    for score in scores:
        value = getattr(score, metric)
        if value is not None:
            means[(score.split, score.tag, score.data_set, score.mode)].append(float(value))
    sets = sorted({s.data_set for s in scores}, key=lambda v: _order(v, SET_ORDER))
    modes = sorted({s.mode for s in scores}, key=lambda v: _order(v, MODE_ORDER))
    rows = sorted({(s.split, s.tag) for s in scores
                   if s.tag != baseline and (compared is None or compared(s.tag))},
                  key=lambda r: (_order(r[0], SPLIT_ORDER), _order(r[1], TAG_ORDER)))
    lines = []
    for split, tag in rows:
        cells = []
        for data_set in sets:
            for mode in modes:
                reference_values = means.get((split, baseline, data_set, mode))
                ours = means.get((split, tag, data_set, mode))
                if not reference_values or not ours or statistics.fmean(reference_values) == 0:
                    cells.append("-")
                    continue
                reference = statistics.fmean(reference_values)
                cells.append(f"{100 * (reference - statistics.fmean(ours)) / reference:+.1f}")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {split} | {tag} vs {baseline} | " + " | ".join(cells) + " |")
    return _header(sets, modes) + lines if lines else []


def _row_keys(scores: List[Score]) -> List[Tuple[str, str, str, str]]:
    """(split, init, set, mode) keys in the order of the tables: split, init, set, decoding."""
    keys = {(s.split, s.tag, s.data_set, s.mode) for s in scores}
    return sorted(keys, key=lambda k: (_order(k[0], SPLIT_ORDER), _order(k[1], TAG_ORDER), _order(k[2], SET_ORDER),
                                       _order(k[3], MODE_ORDER)))


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
    """Write RESULTS.md and RESULTS.json (``output`` with the suffix .json), both atomically, and the
    pre-training curves (``RESULTS_figures/`` beside ``output``); returns the scores it was made from.
    ``notes``: a markdown file appended as is (a recipe's record of what was tried), read before
    anything is written."""
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
    for baseline, compared, title, note in COMPARISONS:
        gains = relative_gain_table(scores, "wer", baseline, compared)
        if gains:
            lines += [f"## {title}", "", note, "", *gains, ""]
    pretraining = pretraining_lines(exp_root, Path(output).parent)
    if pretraining:
        lines += ["## Pre-training: curves and codebook health", "",
                  "From each `exp/pretrain_<tag>/train.log`; the curves (loss, target_ppl, active codewords per "
                  "target layer, lr) are also in `exp/pretrain_<tag>/training_curves.png`. Active codewords = "
                  "codewords nearest to at least one target in an update, averaged over the logging interval.",
                  "", *pretraining, ""]
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
    write_results_json(Path(output).with_suffix(".json"), results_rows(scores, exp_root, _row_keys(scores)))
    atomic_write_text(output, "\n".join(lines))
    return scores
