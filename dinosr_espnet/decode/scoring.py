"""WER / CER by our own edit-distance alignment, and sclite ``trn`` files.

Counts follow sclite's conventions: an alignment minimises substitutions + deletions +
insertions; error rate = (S + D + I) / N with N the number of reference units. CER is computed
on characters with spaces kept as units (one per word boundary), like jiwer's ``cer`` and like
ESPnet's ``<space>``-tokenised char scoring.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import editdistance

from dinosr_espnet.atomic_files import atomic_write_text

SCLITE = Path("/usr/lib/sctk/bin/sclite")


@dataclass
class ErrorCounts:
    """Alignment counts over a set of sentences."""

    reference_length: int = 0
    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentences: int = 0
    sentences_with_errors: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def error_rate(self) -> float:
        """Percent. A set with no reference units has rate 0 when error-free, else infinity."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else math.inf
        return 100.0 * self.errors / self.reference_length

    def add(self, other: "ErrorCounts") -> None:
        for name in ("reference_length", "hits", "substitutions", "deletions", "insertions",
                     "sentences", "sentences_with_errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> Dict[str, float]:
        rate = self.error_rate
        return {**asdict(self), "errors": self.errors,
                "error_rate": round(rate, 4) if math.isfinite(rate) else None}


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment of two unit sequences, with S/D/I counts from the backtrace.

    Among the alignments with the fewest errors it takes one with the most hits (as sclite's
    weights and jiwer do); remaining ties prefer substitution, then deletion, then insertion.
    """
    rows, cols = len(reference), len(hypothesis)
    # cost = errors * scale - hits: minimising it minimises errors first, then maximises hits
    scale = rows + cols + 1
    # An alignment with the minimum number of errors d never leaves the band |i - j| <= d, so the
    # table is filled only there (d from the C library editdistance); exact, and fast for good output.
    band = max(editdistance.eval(list(reference), list(hypothesis)), abs(rows - cols))
    infinity = (rows + cols + 2) * scale
    cost = [[infinity] * (cols + 1) for _ in range(rows + 1)]
    for i in range(min(rows, band) + 1):
        cost[i][0] = i * scale
    for j in range(min(cols, band) + 1):
        cost[0][j] = j * scale
    for i in range(1, rows + 1):
        previous, current, ref_unit = cost[i - 1], cost[i], reference[i - 1]
        for j in range(max(1, i - band), min(cols, i + band) + 1):
            diagonal = previous[j - 1] + (scale if ref_unit != hypothesis[j - 1] else -1)
            current[j] = min(diagonal, previous[j] + scale, current[j - 1] + scale)
    counts = ErrorCounts(reference_length=rows, sentences=1)
    i, j = rows, cols
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            same = reference[i - 1] == hypothesis[j - 1]
            if cost[i][j] == cost[i - 1][j - 1] + (-1 if same else scale):
                if same:
                    counts.hits += 1
                else:
                    counts.substitutions += 1
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i][j] == cost[i - 1][j] + scale:
            counts.deletions += 1
            i -= 1
        else:
            counts.insertions += 1
            j -= 1
    counts.sentences_with_errors = int(counts.errors > 0)
    return counts


def words(text: str) -> List[str]:
    return text.split()


def characters(text: str) -> List[str]:
    """Characters of the normalised text, a single space between words counting as one unit."""
    return list(" ".join(text.split()))


def score_texts(references: Dict[str, str], hypotheses: Dict[str, str]) -> Dict[str, ErrorCounts]:
    """Corpus-level word and character counts; every reference id must have a hypothesis."""
    missing = [utt for utt in references if utt not in hypotheses]
    if missing:
        raise ValueError(f"no hypothesis for {len(missing)} reference utterances, e.g. {missing[0]!r}")
    word_counts, char_counts = ErrorCounts(), ErrorCounts()
    for utt, reference in references.items():
        word_counts.add(align(words(reference), words(hypotheses[utt])))
        char_counts.add(align(characters(reference), characters(hypotheses[utt])))
    return {"word": word_counts, "char": char_counts}


def trn_line(text: str, utt_id: str, speaker: Optional[str] = None) -> str:
    """sclite ``trn`` line: ``TEXT (spk-uttid)``; ESPnet's convention, speaker = utt2spk."""
    return f"{' '.join(text.split())} ({speaker or utt_id}-{utt_id})"


def write_trn(path: Path, texts: Dict[str, str], utt2spk: Optional[Dict[str, str]] = None) -> None:
    utt2spk = utt2spk or {}
    lines = [trn_line(text, utt, utt2spk.get(utt)) for utt, text in texts.items()]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_trn(path: Path) -> Dict[str, str]:
    """``TEXT (spk-uttid)`` lines into ``{spk-uttid: TEXT}`` (sclite's own utterance key)."""
    texts: Dict[str, str] = {}
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.rstrip()
        if not line:
            continue
        if not line.endswith(")") or "(" not in line:
            raise ValueError(f"{path}:{line_number}: not a trn line (expected 'TEXT (id)'): {line!r}")
        text, _, key = line[:-1].rpartition("(")
        texts[key] = text.strip()
    return texts


def score_set(output_dir: Path, references: Dict[str, str], hypotheses: Dict[str, str],
              utt2spk: Optional[Dict[str, str]] = None, extra: Optional[dict] = None) -> dict:
    """Write ``ref.trn``, ``hyp.trn`` and ``score.json`` (WER, CER, S/D/I) for one set and mode."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ordered_hypotheses = {utt: hypotheses[utt] for utt in references}
    write_trn(output_dir / "ref.trn", references, utt2spk)
    write_trn(output_dir / "hyp.trn", ordered_hypotheses, utt2spk)
    counts = score_texts(references, ordered_hypotheses)
    summary = {
        "wer": counts["word"].to_dict()["error_rate"],
        "cer": counts["char"].to_dict()["error_rate"],
        "word": counts["word"].to_dict(),
        "char": counts["char"].to_dict(),
        **(extra or {}),
    }
    atomic_write_text(output_dir / "score.json", json.dumps(summary, indent=2) + "\n")  # always complete
    return summary


def sclite_word_errors(ref_trn: Path, hyp_trn: Path, sclite: Path = SCLITE) -> Optional[Tuple[int, int]]:
    """``(errors, reference words)`` from sclite's summary, or None when sclite is not installed."""
    if not Path(sclite).is_file() and shutil.which(str(sclite)) is None:
        return None
    result = subprocess.run([str(sclite), "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm",
                             "-o", "sum", "stdout"], capture_output=True, text=True, check=True)
    for line in result.stdout.splitlines():
        if "Sum/Avg" in line:
            fields = [field for field in line.replace("|", " ").split() if field]
            # | Sum/Avg | #Snt #Wrd | Corr Sub Del Ins Err S.Err |  (counts, not percents, with -o sum? no: percents)
            numbers = fields[1:]
            sentences, reference_words = int(float(numbers[0])), int(float(numbers[1]))
            error_percent = float(numbers[6])
            return round(error_percent * reference_words / 100.0), reference_words
    raise RuntimeError(f"sclite printed no Sum/Avg line:\n{result.stdout[-2000:]}")
