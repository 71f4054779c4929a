"""Stage 2's ``dump/<set>/``: a validated data dir restricted to the utterances of a duration window.

``dump/<set>/`` holds the data dir's files for the kept utterances, ``speech_shape``
(= ``utt2num_samples``), ``text_shape.char`` (``<utt> <num_tokens>,<vocab>``, labelled sets only)
and ``dropped.txt`` (every removed utterance and why). It is written to a temporary dir and renamed
into place, so it is never half-written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from dinosr_espnet.asr.token_list import char_tokens
from dinosr_espnet.constants import SAMPLE_RATE
from dinosr_espnet.data.kaldi_data import DataDir, replace_dir, temporary_dir_for, write_table


def parse_subsets(text: str) -> List[Tuple[str, str, int]]:
    """``"NAME:SOURCE:COUNT ..."`` -> [(name, source, count)]; ValueError naming a bad entry."""
    subsets = []
    for entry in text.split():
        parts = entry.split(":")
        if len(parts) != 3 or not all(parts) or not parts[2].isdigit() or int(parts[2]) == 0:
            raise ValueError(f"--subsets: {entry!r} is not NAME:SOURCE:COUNT with COUNT a positive integer")
        subsets.append((parts[0], parts[1], int(parts[2])))
    return subsets


def spread_subset(utterance_ids: Sequence[str], count: int) -> List[str]:
    """``count`` ids spread evenly over the sorted ``utterance_ids`` (every id when there are fewer)."""
    ordered = sorted(utterance_ids)
    if len(ordered) <= count:
        return ordered
    return [ordered[index * len(ordered) // count] for index in range(count)]


def select_utterances(data_dir: DataDir, min_seconds: float, max_seconds: float,
                      sample_rate: int = SAMPLE_RATE) -> Tuple[List[str], List[str]]:
    """(kept utterance ids, ``<utt> <reason>`` lines for the dropped ones); ``max_seconds`` 0 = no limit."""
    kept, dropped = [], []
    for utterance in data_dir.utt_ids:
        seconds = data_dir.num_samples[utterance] / sample_rate
        if seconds < min_seconds:
            dropped.append(f"{utterance} too_short {seconds:.2f}s < {min_seconds}s")
        elif max_seconds > 0 and seconds > max_seconds:
            dropped.append(f"{utterance} too_long {seconds:.2f}s > {max_seconds}s")
        else:
            kept.append(utterance)
    return kept, dropped


def write_dump_set(data_dir: DataDir, output: Path, kept: List[str], dropped: List[str],
                   vocabulary_size: int) -> None:
    """Write ``output`` (= dump/<set>/) for the ``kept`` utterances of ``data_dir``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_dir_for(output)
    for name, table in data_dir.tables.items():
        if name != "spk2utt":
            write_table(temporary / name, table, kept)
    speakers: Dict[str, List[str]] = {}
    for utterance in kept:
        speakers.setdefault(data_dir.utt2spk[utterance], []).append(utterance)
    write_table(temporary / "spk2utt", {s: " ".join(u) for s, u in speakers.items()}, sorted(speakers, key=str.encode))
    write_table(temporary / "speech_shape", {u: str(data_dir.num_samples[u]) for u in kept}, kept)
    if data_dir.text is not None:
        shapes = {u: f"{len(char_tokens(data_dir.text[u]))},{vocabulary_size}" for u in kept}
        write_table(temporary / "text_shape.char", shapes, kept)
    (temporary / "dropped.txt").write_text("".join(f"{line}\n" for line in dropped), encoding="utf-8")
    replace_dir(temporary, output)
