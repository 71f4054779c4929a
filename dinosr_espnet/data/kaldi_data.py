"""Kaldi-style data directories: write them, read their tables and validate them.

This module is the one reader of Kaldi tables in the project: ``read_table`` (rows with line
numbers), ``read_table_map`` (``{key: value}``) and ``read_num_samples`` (``{utt: samples}``);
all raise DataDirError with ``file:line``.

A data dir holds ``wav.scp text utt2spk spk2utt utt2num_samples`` (and, for the synthetic corpus,
``frame_phones``), each sorted by key in byte order (``LC_ALL=C sort``). ``wav.scp`` names the
FLAC file directly; ESPnet's ``sound`` loader reads it with soundfile.
"""
import multiprocessing
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.data.phones import PHONE_SET, num_frames
from dinosr_espnet.data.text_normalization import transcript_problem

SAMPLE_RATE = 16000
KEY_FILES = ("wav.scp", "text", "utt2spk", "utt2num_samples")


class DataDirError(ValueError):
    """A problem in a data dir or its audio; the message names the file and line."""


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    speaker: str
    audio_path: str
    text: str
    source: str = ""       # where the transcript came from (file:line), for error messages


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _audio_problem(path: str) -> Tuple[Optional[str], int]:
    """(problem or None, number of samples) for one audio file."""
    if not Path(path).is_file():
        return "audio file does not exist", 0
    try:
        info = soundfile.info(path)
        with soundfile.SoundFile(path) as handle:
            handle.read(min(1024, info.frames), dtype="int16")
    except Exception as error:  # soundfile raises several types for corrupt files
        return f"audio is unreadable ({type(error).__name__}: {str(error).strip()[:120]})", 0
    if info.samplerate != SAMPLE_RATE:
        return f"sample rate is {info.samplerate} Hz, expected {SAMPLE_RATE}", 0
    if info.channels != 1:
        return f"audio has {info.channels} channels, expected mono", 0
    if info.frames <= 0:
        return "audio is empty", 0
    return None, info.frames


def _audio_problems(paths: Sequence[str], num_jobs: int) -> List[Tuple[Optional[str], int]]:
    if num_jobs > 1 and len(paths) > 200:
        with multiprocessing.get_context("fork").Pool(num_jobs) as pool:
            return pool.map(_audio_problem, paths, chunksize=256)
    return [_audio_problem(path) for path in paths]


def write_data_dir(directory: Path, utterances: Sequence[Utterance], num_jobs: int = 1,
                   frame_phones: Optional[Dict[str, str]] = None) -> None:
    """Write a data dir for ``utterances``; audio is checked while counting samples.

    Raises DataDirError naming the transcript file/line of the first bad utterance.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(utterances, key=lambda utterance: utterance.utterance_id.encode())
    seen = set()
    for utterance in ordered:
        if utterance.utterance_id in seen:
            raise DataDirError(f"{utterance.source}: duplicate utterance id {utterance.utterance_id}")
        seen.add(utterance.utterance_id)
        problem = transcript_problem(utterance.text)
        if problem:
            raise DataDirError(f"{utterance.source}: {problem} for {utterance.utterance_id}")
    checks = _audio_problems([utterance.audio_path for utterance in ordered], num_jobs)
    for utterance, (problem, _) in zip(ordered, checks):
        if problem:
            raise DataDirError(f"{utterance.audio_path}: {problem} (utterance {utterance.utterance_id}, "
                               f"listed in {utterance.source})")
    _write_lines(directory / "wav.scp", [f"{u.utterance_id} {u.audio_path}" for u in ordered])
    _write_lines(directory / "text", [f"{u.utterance_id} {u.text}" for u in ordered])
    _write_lines(directory / "utt2spk", [f"{u.utterance_id} {u.speaker}" for u in ordered])
    _write_lines(directory / "utt2num_samples", [f"{u.utterance_id} {n}" for u, (_, n) in zip(ordered, checks)])
    speakers: Dict[str, List[str]] = {}
    for utterance in ordered:
        speakers.setdefault(utterance.speaker, []).append(utterance.utterance_id)
    _write_lines(directory / "spk2utt", [f"{s} {' '.join(speakers[s])}" for s in sorted(speakers, key=str.encode)])
    if frame_phones is not None:
        missing = [u.utterance_id for u in ordered if u.utterance_id not in frame_phones]
        if missing:
            raise DataDirError(f"no frame alignment for {len(missing)} utterances of {directory}, e.g. {missing[0]}")
        _write_lines(directory / "frame_phones", [f"{u.utterance_id} {frame_phones[u.utterance_id]}" for u in ordered])


def read_table(path: Path) -> List[Tuple[int, str, str]]:
    """(line number, key, rest) per line of a Kaldi table ``<key> <rest...>``.

    The key ends at the first space or tab; ``rest`` is the remainder of the line as written
    (not stripped, so transcript checks can see stray spaces). Blank-line rule: trailing blank lines
    at the very end of the file are ignored (editors and ``echo >>`` leave them); a blank
    (empty or whitespace-only) line anywhere before the last entry is an error, because it
    usually means a broken merge or a truncated write. Raises DataDirError naming file:line for a
    missing file, a blank line inside the table or a line that starts with whitespace (no key).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: missing")
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle]
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataDirError(f"{path}:{number}: blank line inside the table (only trailing blank lines "
                               f"are allowed)")
        key, rest = (re.split(r"[ \t]", line, maxsplit=1) + [""])[:2]  # Kaldi: space or tab after the key
        if not key:
            raise DataDirError(f"{path}:{number}: missing key (line starts with whitespace)")
        rows.append((number, key, rest))
    return rows


def read_table_map(path: Path, require_sorted: bool = False, allow_empty: bool = True) -> Dict[str, str]:
    """``{key: value}`` of a Kaldi table, in file order; values are stripped and may hold spaces.

    Same line and blank-line rules as ``read_table``. DataDirError naming file:line for a duplicate
    key, for keys out of ``LC_ALL=C sort`` order when ``require_sorted``, and for an empty value
    unless ``allow_empty`` (a ``text`` line may legitimately have an empty transcript, a
    ``wav.scp`` line may not).
    """
    rows = read_table(path)
    if require_sorted:
        check_sorted_unique(path, rows)
    return _rows_to_map(path, rows, allow_empty)


def _rows_to_map(path: Path, rows: List[Tuple[int, str, str]], allow_empty: bool = True) -> Dict[str, str]:
    table: Dict[str, str] = {}
    first_line: Dict[str, int] = {}
    for number, key, rest in rows:
        if key in table:
            raise DataDirError(f"{path}:{number}: duplicate key {key!r} (first on line {first_line[key]})")
        value = rest.strip()
        if not value and not allow_empty:
            raise DataDirError(f"{path}:{number}: {key!r} has no value")
        table[key], first_line[key] = value, number
    return table


def read_num_samples(path: Path) -> Dict[str, int]:
    """``{utt: number of samples}`` from a Kaldi ``utt2num_samples`` (``<utt> 123``) or an ESPnet
    ``speech_shape`` (``<utt> 123,1``: samples, then the other dimensions, which are ignored).

    DataDirError naming file:line for a value that is not a non-negative integer (or such a
    comma-separated shape), besides ``read_table_map``'s errors.
    """
    rows = read_table(path)
    values = _rows_to_map(path, rows)  # rejects duplicate keys
    counts: Dict[str, int] = {}
    for number, key, _ in rows:
        value = values[key]
        if not re.fullmatch(r"\d+(,\d+)*", value):
            raise DataDirError(f"{path}:{number}: expected '<utt> <num_samples>' or '<utt> <num_samples>,<dims>' "
                               f"for {key!r}, got {value!r}")
        counts[key] = int(value.split(",")[0])
    return counts


def check_sorted_unique(path: Path, rows: List[Tuple[int, str, str]]) -> None:
    """DataDirError naming file:line for a repeated key or keys out of ``LC_ALL=C sort`` (byte) order."""
    for (_, previous, _), (number, key, _) in zip(rows, rows[1:]):
        if key.encode() == previous.encode():
            raise DataDirError(f"{path}:{number}: duplicate id {key}")
        if key.encode() < previous.encode():
            raise DataDirError(f"{path}:{number}: not sorted ({key} after {previous}); use LC_ALL=C sort")


def validate_data_dir(directory: Path, num_jobs: int = 1, check_audio: bool = True) -> int:
    """Check a data dir: files present, sorted, unique ids, the same ids in every file, speakers
    consistent, transcripts non-empty and within A-Z ' space, audio readable 16 kHz mono with the
    listed number of samples, and frame_phones (when present) of the right length and phone set.
    Returns the number of utterances; raises DataDirError naming the file and line."""
    directory = Path(directory)
    tables = {name: read_table(directory / name) for name in KEY_FILES}
    for name, rows in tables.items():
        check_sorted_unique(directory / name, rows)
    reference = [key for _, key, _ in tables["wav.scp"]]
    for name in KEY_FILES[1:]:
        keys = [key for _, key, _ in tables[name]]
        if keys != reference:
            extra = sorted(set(keys) - set(reference))
            absent = sorted(set(reference) - set(keys))
            where = next((number for number, key, _ in tables[name] if key in extra), len(keys))
            raise DataDirError(f"{directory / name}:{where}: ids differ from wav.scp "
                               f"(not in wav.scp: {extra[:3]}, missing: {absent[:3]})")
    for number, key, text in tables["text"]:
        problem = transcript_problem(text)
        if problem:
            raise DataDirError(f"{directory / 'text'}:{number}: {problem} (utterance {key})")
    speakers: Dict[str, List[str]] = {}
    for _, key, speaker in tables["utt2spk"]:
        speakers.setdefault(speaker, []).append(key)
    spk2utt = read_table(directory / "spk2utt")
    check_sorted_unique(directory / "spk2utt", spk2utt)
    if {key: rest.split() for _, key, rest in spk2utt} != speakers:
        raise DataDirError(f"{directory / 'spk2utt'}: does not match utt2spk")
    samples = {}
    for number, key, value in tables["utt2num_samples"]:
        if not value.isdigit():
            raise DataDirError(f"{directory / 'utt2num_samples'}:{number}: not a sample count: {value!r}")
        samples[key] = int(value)
    if check_audio:
        paths = [path for _, _, path in tables["wav.scp"]]
        for (number, key, path), (problem, frames) in zip(tables["wav.scp"], _audio_problems(paths, num_jobs)):
            if problem:
                raise DataDirError(f"{directory / 'wav.scp'}:{number}: {path}: {problem} (utterance {key})")
            if frames != samples[key]:
                raise DataDirError(f"{directory / 'utt2num_samples'}: {key} lists {samples[key]} samples, "
                                   f"{path} has {frames}")
    if (directory / "frame_phones").exists():
        rows = read_table(directory / "frame_phones")
        if [key for _, key, _ in rows] != reference:
            raise DataDirError(f"{directory / 'frame_phones'}: ids differ from wav.scp")
        for number, key, rest in rows:
            labels = rest.split()
            if len(labels) != num_frames(samples[key]):
                raise DataDirError(f"{directory / 'frame_phones'}:{number}: {len(labels)} frames, expected "
                                   f"{num_frames(samples[key])} for {samples[key]} samples")
            unknown = set(labels) - PHONE_SET
            if unknown:
                raise DataDirError(f"{directory / 'frame_phones'}:{number}: unknown phones {sorted(unknown)}")
    return len(reference)
