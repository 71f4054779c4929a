"""LibriSpeech and Libri-light (librispeech_finetuning) -> Kaldi data dirs.

The same code prepares the real corpora and the synthetic one (which has the same layout).

Libri-light limited-resource convention: 10 min = fold ``1h/0``, 1 h = the six ``1h/*`` folds,
10 h = ``1h/*`` + ``9h``, each with its ``clean`` and ``other`` halves; 100 h = train-clean-100.
"""
import gzip
import shutil
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from dinosr_espnet.atomic_files import atomic_open, atomic_write_text
from dinosr_espnet.data.kaldi_data import (DataDirError, Utterance, raise_problems, read_frame_phones,
                                           utterance_problems, validate_data_dir, write_data_dir)
from dinosr_espnet.data.text_normalization import transcript_problem

# data dir -> [(corpus, relative directory)], corpus "librispeech" or "finetuning"
_FOLDS = [f"1h/{fold}/{condition}" for fold in range(6) for condition in ("clean", "other")]
DATA_SETS: Dict[str, List[Tuple[str, str]]] = {
    "train_960": [("librispeech", part) for part in ("train-clean-100", "train-clean-360", "train-other-500")],
    "train_clean_100": [("librispeech", "train-clean-100")],
    "train_10m": [("finetuning", "1h/0/clean"), ("finetuning", "1h/0/other")],
    "train_1h": [("finetuning", fold) for fold in _FOLDS],
    "train_10h": [("finetuning", fold) for fold in _FOLDS] + [("finetuning", "9h/clean"), ("finetuning", "9h/other")],
    "dev_clean": [("librispeech", "dev-clean")],
    "dev_other": [("librispeech", "dev-other")],
    "test_clean": [("librispeech", "test-clean")],
    "test_other": [("librispeech", "test-other")],
}
EVAL_SETS = ("dev_clean", "dev_other", "test_clean", "test_other")


def _chapter_dirs(root: Path) -> List[Path]:
    return sorted(path for path in root.glob("*/*") if path.is_dir())


def scan_tree(root: Path) -> Tuple[List[Utterance], List[str]]:
    """Every utterance under ``root/<spk>/<chap>/<spk>-<chap>.trans.txt`` (audio: ``<utt>.flac``
    beside it), and every problem of the tree's layout and transcripts (audio is checked later).

    The speaker of an utterance is the first field of its id, as in LibriSpeech; an id whose speaker
    or chapter is not its directory's, a chapter without its ``trans.txt``, a ``trans.txt`` that is not
    UTF-8 and a ``.flac`` no transcript line names (orphan audio) are problems.
    """
    root = Path(root)
    if not root.is_dir():
        return [], [f"{root}: directory not found"]
    utterances: List[Utterance] = []
    problems: List[str] = []
    chapters = _chapter_dirs(root)
    for chapter_dir in chapters:
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        transcript_file = chapter_dir / f"{speaker}-{chapter}.trans.txt"
        audio_files = {path.stem for path in chapter_dir.glob("*.flac")}
        if not transcript_file.is_file():
            others = sorted(path.name for path in chapter_dir.glob("*.trans.txt"))
            problems.append(f"{transcript_file}: missing ({len(audio_files)} audio files in {chapter_dir} "
                            f"have no transcript" + (f"; found {', '.join(others)}" if others else "") + ")")
            continue
        listed = set()
        for number, raw in enumerate(transcript_file.read_bytes().split(b"\n"), start=1):
            source = f"{transcript_file}:{number}"
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as error:
                problems.append(f"{source}: not UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})")
                continue
            if not line.strip():
                continue
            utterance_id, _, text = line.partition(" ")
            listed.add(utterance_id)
            fields = utterance_id.split("-")
            if len(fields) != 3 or fields[:2] != [speaker, chapter]:
                problems.append(f"{source}: utterance id {utterance_id!r} does not belong in {speaker}/{chapter}/ "
                                f"(expected {speaker}-{chapter}-<number>)")
                continue
            utterances.append(Utterance(utterance_id, speaker,
                                        str((chapter_dir / f"{utterance_id}.flac").resolve()), text, source))
        for orphan in sorted(audio_files - listed):
            problems.append(f"{chapter_dir / (orphan + '.flac')}: orphan audio (no line in {transcript_file.name})")
    if not chapters:
        problems.append(f"{root}: no <spk>/<chap>/ directories with *.trans.txt found")
    return utterances, problems


def _unique(items: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(items))


def prepare_data_dirs(librispeech_root: Path, finetuning_root: Optional[Path], datadir: Path,
                      sets: Sequence[str] = tuple(DATA_SETS), num_jobs: int = 1,
                      frame_phones: Optional[Path] = None,
                      log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> Dict[str, int]:
    """Write and validate ``datadir/<set>`` for each of ``sets``; return utterances per set.

    Every set is attempted: a set with problems is not written (an earlier good copy stays), the
    good ones are, and then one DataDirError lists every problem of every set. Each corpus part is
    scanned and its audio decoded once, however many sets share it. A set whose ``.done`` marker
    names the same sources is skipped (after a cheap validation).
    """
    roots = {"librispeech": Path(librispeech_root), "finetuning": Path(finetuning_root) if finetuning_root else None}
    alignments = read_frame_phones(frame_phones) if frame_phones else None
    counts: Dict[str, int] = {}
    problems: List[str] = []
    parts: Dict[Path, Tuple[List[Utterance], List[str], Dict[str, int]]] = {}
    for name in sets:
        if name not in DATA_SETS:
            raise ValueError(f"unknown data set {name!r}; choose from {sorted(DATA_SETS)}")
        directory = Path(datadir) / name
        sources = " ".join(str((roots[corpus] or Path("-")) / relative) for corpus, relative in DATA_SETS[name])
        marker = f"{sources} frame_phones={frame_phones}\n"
        if (directory / ".done").exists() and (directory / ".done").read_text() == marker:
            counts[name] = validate_data_dir(directory, num_jobs, check_audio="none")
            log(f"[prepare] {directory}: complete ({counts[name]} utterances), skipped")
            continue
        utterances: List[Utterance] = []
        set_problems: List[str] = []
        samples: Dict[str, int] = {}
        for corpus, relative in DATA_SETS[name]:
            if roots[corpus] is None:
                set_problems.append(f"{name} needs the librispeech_finetuning tree (--finetuning_dir)")
                break
            part = roots[corpus] / relative
            if part not in parts:
                found, layout_problems = scan_tree(part)
                audio_problems, part_samples = utterance_problems(found, num_jobs)
                parts[part] = (found, layout_problems + audio_problems, part_samples)
            utterances += parts[part][0]
            set_problems += parts[part][1]
            samples.update(parts[part][2])
        if not set_problems:
            try:
                write_data_dir(directory, utterances, num_jobs, alignments, num_samples=samples)
            except DataDirError as error:  # e.g. duplicate ids across parts, missing alignments
                set_problems += error.problems
        if set_problems:
            problems += set_problems
            kept = " (the earlier copy is kept)" if directory.exists() else ""
            log(f"[prepare] {directory}: not written, {len(set_problems)} problems{kept}")
            continue
        counts[name] = len(utterances)
        atomic_write_text(directory / ".done", marker)
        log(f"[prepare] {directory}: {counts[name]} utterances")
    raise_problems(_unique(problems))
    return counts


def _eval_sentences(datadir: Path) -> set:
    sentences = set()
    for name in EVAL_SETS:
        path = Path(datadir) / name / "text"
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                sentences.update(line.rstrip("\n").partition(" ")[2] for line in handle)
    return sentences


def write_lm_text(source: Path, datadir: Path, drop_eval_sentences: bool = True) -> int:
    """Write ``datadir/local/lm/lm_text.txt`` from ``source`` (plain or .gz, one sentence per line),
    keeping valid transcripts only and, by default, dropping dev/test sentences. Returns lines kept."""
    target = Path(datadir) / "local" / "lm" / "lm_text.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    excluded = _eval_sentences(datadir) if drop_eval_sentences else set()
    opener = gzip.open if str(source).endswith(".gz") else open
    kept = 0
    with opener(source, "rt", encoding="utf-8") as reader, atomic_open(target, "w") as writer:
        for line in reader:
            sentence = " ".join(line.split())
            if sentence and sentence not in excluded and transcript_problem(sentence) is None:
                writer.write(sentence + "\n")
                kept += 1
    return kept


def install_official_lm(arpa_gz: Path, datadir: Path, lexicon: Optional[Path] = None) -> Path:
    """Copy (hard-link when possible) the official 4-gram to ``datadir/local/lm/official_4gram.arpa.gz``
    and the lexicon to ``librispeech-lexicon.txt`` beside it."""
    lm_dir = Path(datadir) / "local" / "lm"
    lm_dir.mkdir(parents=True, exist_ok=True)
    pairs = [(Path(arpa_gz), lm_dir / "official_4gram.arpa.gz")]
    if lexicon:
        pairs.append((Path(lexicon), lm_dir / "librispeech-lexicon.txt"))
    for source, target in pairs:
        if target.exists():
            target.unlink()
        try:
            target.hardlink_to(source)
        except OSError:
            shutil.copy2(source, target)
    return lm_dir / "official_4gram.arpa.gz"
