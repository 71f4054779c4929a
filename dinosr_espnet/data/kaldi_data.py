"""Kaldi-style data directories, the one module for them: read, validate and write.

Every reader of data dirs in the project goes through here: data preparation (``data.librispeech``),
stage 2 (``bin.format_data``), the decoders and inference (``decode``), unit analysis
(``analysis``) and the scorer. Rules, the same everywhere:

- Tables: ``<key> <value>`` per line, UTF-8, key ending at the first space or tab; trailing blank
  lines are ignored, a blank line inside a table is an error (``read_table``).
- A data dir holds ``wav.scp utt2spk utt2num_samples`` (an ESPnet ``speech_shape`` stands for
  ``utt2num_samples``), ``text`` for labelled sets, ``spk2utt`` and, for aligned sets,
  ``frame_phones``; each sorted by key in byte order (``LC_ALL=C sort``) with the ids of ``wav.scp``.
- Transcripts: ``text_normalization.transcript_problem`` (A-Z, apostrophe, single spaces).
- Audio: ``data.audio`` (FLAC/WAV by content, 16 kHz mono; ``wav.scp`` commands only when allowed).
- ``frame_phones``: ``<utt> <phone_1> ... <phone_T>``, T = ``constants.num_frames(samples)``, phones of
  ``constants.PHONE_SET``.

Validation collects every problem of a dir and raises one DataDirError listing them all (each with
file:line), so one run names everything to fix. Writing goes to a temporary dir that is renamed into
place only when complete, so a failed or killed run never leaves a half-written data dir and keeps
the previous good one.
"""
from __future__ import annotations

import multiprocessing
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.constants import PHONE_SET, num_frames
from dinosr_espnet.data.audio import AudioError, audio_problem, is_pipe, pipe_refusal, read_wav_scp_value
from dinosr_espnet.data.text_normalization import transcript_problem

REQUIRED_FILES = ("wav.scp", "utt2spk", "utt2num_samples")
OPTIONAL_FILES = ("text", "frame_phones", "spk2utt")
MAX_LISTED_PROBLEMS = 200
AUDIO_CHECKS = ("full", "header", "exists", "none")


class DataDirError(ValueError):
    """Problems in a data dir, a corpus tree or its audio; every message names the file (and line).

    Built from one message or a list of them; ``problems`` keeps the list.
    """

    def __init__(self, problems: Union[str, Sequence[str]]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            shown = self.problems[:MAX_LISTED_PROBLEMS]
            more = len(self.problems) - len(shown)
            message = f"{len(self.problems)} problems:\n" + "\n".join(f"  {problem}" for problem in shown)
            if more:
                message += f"\n  ... and {more} more"
        super().__init__(message)


def raise_problems(problems: Sequence[str]) -> None:
    """Raise one DataDirError listing ``problems`` when there are any."""
    if problems:
        raise DataDirError(problems)


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------
def read_table(path: Path) -> List[Tuple[int, str, str]]:
    """(line number, key, rest) per line of a Kaldi table ``<key> <rest...>``.

    The key ends at the first space or tab; ``rest`` is the remainder of the line as written
    (not stripped, so transcript checks can see stray spaces). Blank-line rule: trailing blank lines
    at the very end of the file are ignored (editors and ``echo >>`` leave them); a blank
    (empty or whitespace-only) line anywhere before the last entry is an error, because it
    usually means a broken merge or a truncated write. Raises DataDirError naming file:line for a
    missing file, a line that is not UTF-8, a blank line inside the table or a line that starts with
    whitespace (no key).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: missing")
    lines = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise DataDirError(f"{path}:{number}: not UTF-8 (byte {raw[error.start]:#04x} at column "
                               f"{error.start + 1})") from None
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
        raise_problems(sorting_problems(path, rows))
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


def sorting_problems(path: Path, rows: List[Tuple[int, str, str]]) -> List[str]:
    """``file:line`` problems for repeated keys or keys out of ``LC_ALL=C sort`` (byte) order."""
    problems = []
    for (_, previous, _), (number, key, _) in zip(rows, rows[1:]):
        if key.encode() == previous.encode():
            problems.append(f"{path}:{number}: duplicate id {key}")
        elif key.encode() < previous.encode():
            problems.append(f"{path}:{number}: not sorted ({key} after {previous}); use LC_ALL=C sort")
    return problems


def write_table(path: Path, table: Dict[str, str], keys: Sequence[str]) -> None:
    """``<key> <value>`` lines for ``keys`` (just ``<key>`` when the value is empty)."""
    with open(path, "w", encoding="utf-8") as handle:
        for key in keys:
            value = table[key]
            handle.write(f"{key} {value}\n" if value else f"{key}\n")


# --------------------------------------------------------------------------------------------------
# frame_phones
# --------------------------------------------------------------------------------------------------
def read_frame_phones(path: Union[str, Path], check_inventory: bool = True) -> Dict[str, List[str]]:
    """Read a ``frame_phones`` file into ``{utt_id: [phone per frame]}`` (file order).

    Raises DataDirError naming the file and line for a line that is not UTF-8, a line without phones,
    a duplicate utterance or (with ``check_inventory``) a phone outside ARPAbet-39 + sil.
    """
    path = Path(path)
    alignments: Dict[str, List[str]] = {}
    for number, utterance, rest in read_table(path):
        phones = rest.split()
        if not phones:
            raise DataDirError(f"{path}:{number}: utterance '{utterance}' has no phones")
        if utterance in alignments:
            raise DataDirError(f"{path}:{number}: utterance '{utterance}' appears twice")
        if check_inventory:
            unknown = sorted(set(phones) - PHONE_SET)
            if unknown:
                raise DataDirError(f"{path}:{number}: utterance '{utterance}' has phones outside "
                                   f"ARPAbet-39 + sil: {' '.join(unknown)}")
        alignments[utterance] = phones
    return alignments


def write_frame_phones(path: Union[str, Path], alignments: Dict[str, Sequence[str]]) -> None:
    """Write ``{utt_id: phones}`` as a ``frame_phones`` file sorted in byte order."""
    with open(path, "w", encoding="utf-8") as handle:
        for utterance in sorted(alignments, key=str.encode):
            handle.write(f"{utterance} {' '.join(alignments[utterance])}\n")


# --------------------------------------------------------------------------------------------------
# reading a data dir
# --------------------------------------------------------------------------------------------------
@dataclass
class DataDir:
    """The per-utterance tables of one data dir, keyed by utterance id, in ``wav.scp`` order.

    ``wav.scp`` order is *the* order of a data dir: every output of the decoders follows it.
    """

    path: Path
    tables: Dict[str, Dict[str, str]] = field(default_factory=dict)
    num_samples: Dict[str, int] = field(default_factory=dict)  # empty when the dir has no sample counts

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def utt_ids(self) -> List[str]:
        return list(self.tables["wav.scp"])

    @property
    def wav(self) -> Dict[str, str]:
        return self.tables["wav.scp"]

    @property
    def text(self) -> Optional[Dict[str, str]]:
        """Transcripts, or None when the dir has no ``text``."""
        return self.tables.get("text")

    @property
    def utt2spk(self) -> Dict[str, str]:
        return self.tables.get("utt2spk", {})

    def __len__(self) -> int:
        return len(self.tables["wav.scp"])


def read_data_dir(path: Union[str, Path]) -> DataDir:
    """Read a data dir as the decoders need it: ``wav.scp`` required, the other files used when present
    (sample counts from ``utt2num_samples`` or ``speech_shape``); a ``text`` must cover every utterance.

    No audio is opened and order is not enforced (``load_data_dir`` validates).
    """
    path = Path(path)
    if not (path / "wav.scp").is_file():
        raise DataDirError(f"{path}: not a data dir (no wav.scp)")
    data_dir = DataDir(path, {"wav.scp": read_table_map(path / "wav.scp", allow_empty=False)})
    for name in ("text", "utt2spk"):
        if (path / name).is_file():
            data_dir.tables[name] = read_table_map(path / name)
    if data_dir.text is not None:
        missing = [utt for utt in data_dir.utt_ids if utt not in data_dir.text]
        if missing:
            raise DataDirError(f"{path / 'text'}: no transcript for {len(missing)} utterances, e.g. {missing[0]!r}")
    for name in ("utt2num_samples", "speech_shape"):
        if (path / name).is_file():
            data_dir.num_samples = read_num_samples(path / name)
            break
    return data_dir


def _audio_checks(values: Sequence[str], level: str, num_jobs: int) -> List[Tuple[Optional[str], int]]:
    if level == "exists":
        return [(None if Path(value).is_file() else f"{value}: audio file does not exist", -1) for value in values]
    full = level == "full"
    if num_jobs > 1 and len(values) > 200:
        with multiprocessing.get_context("fork").Pool(num_jobs) as pool:
            return pool.starmap(audio_problem, [(value, full) for value in values], chunksize=256)
    return [audio_problem(value, full) for value in values]


def _pipe_check(value: str) -> Tuple[Optional[str], int]:
    try:
        return None, len(read_wav_scp_value(value, allow_pipes=True))
    except AudioError as error:
        return str(error), 0


def load_data_dir(path: Union[str, Path], require_text: bool = False, check_audio: Union[str, bool] = "header",
                  num_jobs: int = 1, allow_wav_scp_pipes: bool = False) -> DataDir:
    """Read and validate a data dir; one DataDirError lists every problem found (file:line each).

    Checks: the required files exist (``text`` too with ``require_text``), are UTF-8, sorted and
    unique, all list the ids of ``wav.scp``; sample counts are positive integers; transcripts follow
    the one transcript rule; ``spk2utt`` (when present) matches ``utt2spk``; ``frame_phones`` (when
    present) have ``num_frames(samples)`` labels from the phone set; ``wav.scp`` commands are refused
    unless ``allow_wav_scp_pipes``. Audio (``check_audio``): ``"full"`` decodes every file (data
    preparation), ``"header"`` checks container, rate, channels and that the length is the listed
    sample count (stage 2), ``"exists"`` only that each file exists, ``"none"`` nothing; True/False
    mean ``"full"``/``"none"``. An allowed command is run and its output checked like a file
    (except with ``"none"``/``"exists"``).
    """
    path = Path(path)
    level = {True: "full", False: "none"}.get(check_audio, check_audio)
    if level not in AUDIO_CHECKS:
        raise ValueError(f"check_audio must be one of {AUDIO_CHECKS}, got {check_audio!r}")
    if not path.is_dir():
        raise DataDirError(f"{path}: data dir does not exist (did stage 1, local/data.sh, run?)")
    problems: List[str] = []
    names = list(REQUIRED_FILES) + [name for name in OPTIONAL_FILES if (path / name).exists()]
    if require_text and "text" not in names:
        problems.append(f"{path / 'text'}: missing; a fine-tuning or evaluation set needs transcripts")
    rows: Dict[str, List[Tuple[int, str, str]]] = {}
    for name in names:
        try:
            rows[name] = read_table(path / name)
        except DataDirError as error:
            problems.extend(error.problems)
            continue
        problems.extend(sorting_problems(path / name, rows[name]))
    if "wav.scp" not in rows:
        raise_problems(problems)
    reference = [key for _, key, _ in rows["wav.scp"]]
    if not reference:
        problems.append(f"{path / 'wav.scp'}: no utterances")
    reference_set = set(reference)
    for name in rows:
        if name in ("wav.scp", "spk2utt"):
            continue
        keys = [key for _, key, _ in rows[name]]
        if set(keys) != reference_set:
            extra = sorted(set(keys) - reference_set)
            absent = sorted(reference_set - set(keys))
            where = next((number for number, key, _ in rows[name] if key in extra), len(keys))
            problems.append(f"{path / name}:{where}: utterance ids differ from wav.scp "
                            f"(extra: {extra[:3]}, missing: {absent[:3]})")
    data_dir = DataDir(path, {name: {key: rest.strip() for _, key, rest in table} for name, table in rows.items()})
    for number, key, text in rows.get("text", []):
        problem = transcript_problem(text)
        if problem:
            problems.append(f"{path / 'text'}:{number}: {problem} (utterance {key})")
    for number, key, value in rows.get("utt2num_samples", []):
        value = value.strip()
        if not value.isdigit() or int(value) <= 0:
            problems.append(f"{path / 'utt2num_samples'}:{number}: {key!r} has {value!r}, "
                            f"expected a positive sample count")
        else:
            data_dir.num_samples[key] = int(value)
    if "spk2utt" in rows and "utt2spk" in rows:
        speakers: Dict[str, List[str]] = {}
        for _, key, speaker in rows["utt2spk"]:
            speakers.setdefault(speaker.strip(), []).append(key)
        if {key: rest.split() for _, key, rest in rows["spk2utt"]} != speakers:
            problems.append(f"{path / 'spk2utt'}: does not match utt2spk")
    problems.extend(check_wav_scp(path, rows["wav.scp"], data_dir.num_samples, level, num_jobs,
                                  allow_wav_scp_pipes)[0])
    for number, key, rest in rows.get("frame_phones", []):
        labels = rest.split()
        if key in data_dir.num_samples and len(labels) != num_frames(data_dir.num_samples[key]):
            problems.append(f"{path / 'frame_phones'}:{number}: {len(labels)} frames, expected "
                            f"{num_frames(data_dir.num_samples[key])} for {data_dir.num_samples[key]} samples")
        unknown = set(labels) - PHONE_SET
        if unknown:
            problems.append(f"{path / 'frame_phones'}:{number}: unknown phones {sorted(unknown)}")
    raise_problems(problems)
    return data_dir


def check_wav_scp(path: Path, rows: List[Tuple[int, str, str]], samples: Dict[str, int], level: str,
                  num_jobs: int = 1, allow_pipes: bool = False) -> Tuple[List[str], Dict[str, int]]:
    """(problems naming ``wav.scp:line``, ``{utt: samples}`` of the audio checked) for ``wav.scp`` rows
    of dir ``path``: commands refused unless ``allow_pipes``, audio checked at ``level`` (AUDIO_CHECKS)
    and its length compared with ``samples`` where listed."""
    problems: List[str] = []
    lengths: Dict[str, int] = {}
    files, commands = [], []
    for number, key, value in rows:
        value = value.strip()
        if not value:
            problems.append(f"{path / 'wav.scp'}:{number}: {key!r} has no value")
        elif is_pipe(value):
            if not allow_pipes:
                problems.append(f"{path / 'wav.scp'}:{number}: {pipe_refusal(value)} (utterance {key})")
            else:
                commands.append((number, key, value))
        else:
            files.append((number, key, value))
    if level == "none":
        return problems, lengths
    checked = list(zip(files, _audio_checks([value for _, _, value in files], level, num_jobs)))
    if level != "exists":
        checked += [(command, _pipe_check(command[2])) for command in commands]
    for (number, key, value), (problem, frames) in sorted(checked):
        if problem:
            problems.append(f"{path / 'wav.scp'}:{number}: {problem} (utterance {key})")
        elif frames >= 0:
            lengths[key] = frames
            if key in samples and frames != samples[key]:
                problems.append(f"{path / 'wav.scp'}:{number}: {value} has {frames} samples, the sample "
                                f"counts list {samples[key]} (utterance {key})")
    return problems, lengths


def validate_data_dir(directory: Union[str, Path], num_jobs: int = 1, check_audio: Union[str, bool] = True,
                      require_text: bool = True, allow_wav_scp_pipes: bool = False) -> int:
    """``load_data_dir`` for a prepared (labelled) dir; returns its number of utterances."""
    return len(load_data_dir(directory, require_text, check_audio, num_jobs, allow_wav_scp_pipes))


# --------------------------------------------------------------------------------------------------
# writing a data dir
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    speaker: str
    audio_path: str
    text: str
    source: str = ""       # where the transcript came from (file:line), for error messages


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def temporary_dir_for(directory: Path) -> Path:
    """``<parent>/.<name>.tmp``, emptied: where ``directory`` is written before it is renamed into place."""
    temporary = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    return temporary


def replace_dir(temporary: Path, directory: Path) -> None:
    """Move the complete ``temporary`` to ``directory``, replacing an older copy."""
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
        temporary.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        temporary.rename(directory)


def duplicate_problems(utterances: Sequence[Utterance]) -> List[str]:
    """A problem per utterance id listed a second time, naming both places."""
    problems: List[str] = []
    first: Dict[str, str] = {}
    for utterance in utterances:
        if utterance.utterance_id in first:
            problems.append(f"{utterance.source}: duplicate utterance id {utterance.utterance_id} "
                            f"(first in {first[utterance.utterance_id]})")
        first.setdefault(utterance.utterance_id, utterance.source)
    return problems


def utterance_problems(utterances: Sequence[Utterance], num_jobs: int = 1) -> Tuple[List[str], Dict[str, int]]:
    """(problems, ``{utt: samples}`` of the good ones): duplicate ids, transcripts, full audio decode."""
    problems = duplicate_problems(utterances)
    for utterance in utterances:
        problem = transcript_problem(utterance.text)
        if problem:
            problems.append(f"{utterance.source}: {problem} for {utterance.utterance_id}")
    samples = {}
    checks = _audio_checks([utterance.audio_path for utterance in utterances], "full", num_jobs)
    for utterance, (problem, frames) in zip(utterances, checks):
        if problem:
            problems.append(f"{problem} (utterance {utterance.utterance_id}, listed in {utterance.source})")
        else:
            samples[utterance.utterance_id] = frames
    return problems, samples


def write_data_dir(directory: Path, utterances: Sequence[Utterance], num_jobs: int = 1,
                   frame_phones: Optional[Dict[str, Sequence[str]]] = None,
                   num_samples: Optional[Dict[str, int]] = None) -> None:
    """Write a data dir for ``utterances`` all at once: into a temporary dir, renamed into place.

    Audio is decoded in full to count samples unless ``num_samples`` (from ``utterance_problems``)
    is given. Raises DataDirError listing every problem; then ``directory`` is left as it was.
    """
    directory = Path(directory)
    ordered = sorted(utterances, key=lambda utterance: utterance.utterance_id.encode())
    if num_samples is None:
        problems, num_samples = utterance_problems(ordered, num_jobs)
    else:
        problems = duplicate_problems(ordered)  # e.g. the same id in two parts of a set
    if frame_phones is not None:
        missing = [u.utterance_id for u in ordered if u.utterance_id not in frame_phones]
        if missing:
            problems.append(f"no frame alignment for {len(missing)} utterances of {directory}, e.g. {missing[0]}")
    raise_problems(problems)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_dir_for(directory)
    _write_lines(temporary / "wav.scp", [f"{u.utterance_id} {u.audio_path}" for u in ordered])
    _write_lines(temporary / "text", [f"{u.utterance_id} {u.text}" for u in ordered])
    _write_lines(temporary / "utt2spk", [f"{u.utterance_id} {u.speaker}" for u in ordered])
    _write_lines(temporary / "utt2num_samples", [f"{u.utterance_id} {num_samples[u.utterance_id]}" for u in ordered])
    speakers: Dict[str, List[str]] = {}
    for utterance in ordered:
        speakers.setdefault(utterance.speaker, []).append(utterance.utterance_id)
    _write_lines(temporary / "spk2utt", [f"{s} {' '.join(speakers[s])}" for s in sorted(speakers, key=str.encode)])
    if frame_phones is not None:
        _write_lines(temporary / "frame_phones",
                     [f"{u.utterance_id} {' '.join(frame_phones[u.utterance_id])}" for u in ordered])
    try:
        load_data_dir(temporary, require_text=True, check_audio="none")
    except DataDirError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    replace_dir(temporary, directory)
