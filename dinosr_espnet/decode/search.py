"""LM weight / word score search on a tune set (fairseq tuned them on dev-other, spec 4).

Every trial is appended to a TSV as soon as it finishes, so an interrupted search resumes
where it stopped; ``lm_weight_search.md`` is the same table sorted by WER.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.decode.decode_config import SearchConfig
from dinosr_espnet.decode.lexicon_decoder import BeamSettings, LexiconBeamDecoder, decode_all
from dinosr_espnet.decode.scoring import ErrorCounts, align

TSV_COLUMNS = ("trial", "beam", "lm_weight", "word_score", "wer", "errors", "words", "seconds")


@dataclass
class Trial:
    trial: int
    beam: int
    lm_weight: float
    word_score: float
    wer: float
    errors: int
    words: int
    seconds: float


def candidate_weights(config: SearchConfig) -> List[Tuple[float, float]]:
    """The (lm_weight, word_score) pairs to try, in order, ``config.budget`` of them."""
    candidates: List[Tuple[float, float]] = []
    if config.default is not None:
        candidates.append((round(config.default[0], 4), round(config.default[1], 4)))
    if config.method == "grid":
        per_axis = max(1, int(math.floor(math.sqrt(max(config.budget - len(candidates), 1)))))
        for lm_weight in np.linspace(*config.lm_weight, per_axis):
            for word_score in np.linspace(*config.word_score, per_axis):
                candidates.append((round(float(lm_weight), 4), round(float(word_score), 4)))
    else:
        generator = random.Random(config.seed)
        while len(candidates) < config.budget:
            candidates.append((round(generator.uniform(*config.lm_weight), 4),
                               round(generator.uniform(*config.word_score), 4)))
    unique = list(dict.fromkeys(candidates))
    return unique[: max(config.budget, 1)]


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorCounts:
    counts = ErrorCounts()
    for reference, hypothesis in zip(references, hypotheses):
        counts.add(align(reference.split(), hypothesis.split()))
    return counts


def read_trials(path: Path) -> List[Trial]:
    if not Path(path).is_file():
        return []
    trials = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(TSV_COLUMNS):
            continue  # a line cut by an interruption
        trials.append(Trial(int(fields[0]), int(fields[1]), float(fields[2]), float(fields[3]), float(fields[4]),
                            int(fields[5]), int(fields[6]), float(fields[7])))
    return trials


def write_markdown(path: Path, trials: List[Trial], tune_set: str) -> None:
    lines = [f"# LM weight / word score search on {tune_set}", "",
             "| rank | trial | beam | lm_weight | word_score | WER | errors / words | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for rank, trial in enumerate(sorted(trials, key=lambda t: (t.wer, t.trial)), start=1):
        lines.append(f"| {rank} | {trial.trial} | {trial.beam} | {trial.lm_weight:g} | {trial.word_score:g} | "
                     f"{trial.wer:.2f} | {trial.errors} / {trial.words} | {trial.seconds:.1f} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def search_weights(decoder: LexiconBeamDecoder, emissions: Sequence[np.ndarray], references: Sequence[str],
                   settings: BeamSettings, config: SearchConfig, table_path: Path,
                   tune_set: str = "tune", log=print, source: Optional[dict] = None,
                   num_workers: int = 1) -> Tuple[BeamSettings, List[Trial]]:
    """Try every candidate at ``settings.beam``; returns the best setting (lowest WER, earliest on ties).

    ``source`` (model, emissions, LM, lexicon, fixed settings) is kept beside the table; trials
    recorded for another source are discarded instead of resumed.
    """
    table_path = Path(table_path)
    source_path = table_path.with_suffix(".source.json")
    source_text = json.dumps(source or {}, sort_keys=True)
    if table_path.is_file() and (not source_path.is_file() or source_path.read_text() != source_text):
        log(f"[search] {table_path} was made for other emissions, LM or settings; starting afresh")
        table_path.unlink()
    atomic_write_text(source_path, source_text)
    done: Dict[Tuple[int, float, float], Trial] = {
        (t.beam, t.lm_weight, t.word_score): t for t in read_trials(table_path)}
    if not table_path.is_file():
        atomic_write_text(table_path, "\t".join(TSV_COLUMNS) + "\n")  # then appended to, one trial a line
    trials: List[Trial] = []
    candidates = candidate_weights(config)
    for index, (lm_weight, word_score) in enumerate(candidates):
        key = (int(settings.beam), lm_weight, word_score)
        if key in done:
            trials.append(done[key])
            continue
        started = time.time()
        hypotheses = decode_all(emissions, decoder, settings.with_weights(lm_weight, word_score),
                                num_workers=num_workers)
        counts = word_errors(references, [h[0].text for h in hypotheses])
        trial = Trial(index, int(settings.beam), lm_weight, word_score, counts.error_rate, counts.errors,
                      counts.reference_length, time.time() - started)
        with open(table_path, "a", encoding="utf-8") as handle:
            handle.write("\t".join(str(getattr(trial, c)) for c in TSV_COLUMNS) + "\n")
        trials.append(trial)
        best = min(trials, key=lambda t: (t.wer, t.trial))
        log(f"[search] {tune_set} trial {index + 1}/{len(candidates)}: lm_weight {lm_weight:g} word_score "
            f"{word_score:g} -> WER {trial.wer:.2f} ({trial.seconds:.1f} s); best {best.wer:.2f}")
    write_markdown(table_path.with_suffix(".md"), trials, tune_set)
    best = min(trials, key=lambda t: (t.wer, t.trial))
    return settings.with_weights(best.lm_weight, best.word_score), trials
