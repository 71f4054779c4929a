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
from dinosr_espnet.data.kaldi_data import DataDirError, Utterance, validate_data_dir, write_data_dir
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


def scan_tree(root: Path) -> List[Utterance]:
    """Every utterance under ``root/<spk>/<chap>/<spk>-<chap>.trans.txt`` (audio: ``<utt>.flac``
    beside it). The speaker of an utterance is the first field of its id, as in LibriSpeech."""
    root = Path(root)
    if not root.is_dir():
        raise DataDirError(f"{root}: directory not found")
    utterances = []
    for transcript_file in sorted(root.glob("*/*/*.trans.txt")):
        with open(transcript_file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                utterance_id, _, text = line.partition(" ")
                source = f"{transcript_file}:{number}"
                problem = transcript_problem(text)
                if problem:
                    raise DataDirError(f"{source}: {problem} for {utterance_id}")
                utterances.append(Utterance(utterance_id, utterance_id.split("-")[0],
                                            str((transcript_file.parent / f"{utterance_id}.flac").resolve()),
                                            text, source))
    if not utterances:
        raise DataDirError(f"{root}: no <spk>/<chap>/*.trans.txt found")
    return utterances


def read_frame_phones(path: Path) -> Dict[str, str]:
    """``<utt> <phone_1> ... <phone_T>`` lines -> {utt: "phone_1 ... phone_T"}."""
    table = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            key, _, rest = line.rstrip("\n").partition(" ")
            if key:
                table[key] = rest
    return table


def prepare_data_dirs(librispeech_root: Path, finetuning_root: Optional[Path], datadir: Path,
                      sets: Sequence[str] = tuple(DATA_SETS), num_jobs: int = 1,
                      frame_phones: Optional[Path] = None,
                      log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> Dict[str, int]:
    """Write and validate ``datadir/<set>`` for each of ``sets``; return utterances per set.

    A set whose ``.done`` marker names the same sources is skipped (after a cheap validation).
    """
    roots = {"librispeech": Path(librispeech_root), "finetuning": Path(finetuning_root) if finetuning_root else None}
    alignments = read_frame_phones(frame_phones) if frame_phones else None
    counts = {}
    for name in sets:
        if name not in DATA_SETS:
            raise ValueError(f"unknown data set {name!r}; choose from {sorted(DATA_SETS)}")
        directory = Path(datadir) / name
        sources = " ".join(str((roots[corpus] or Path("-")) / relative) for corpus, relative in DATA_SETS[name])
        marker = f"{sources} frame_phones={frame_phones}\n"
        if (directory / ".done").exists() and (directory / ".done").read_text() == marker:
            counts[name] = validate_data_dir(directory, num_jobs, check_audio=False)
            log(f"[prepare] {directory}: complete ({counts[name]} utterances), skipped")
            continue
        utterances: List[Utterance] = []
        for corpus, relative in DATA_SETS[name]:
            if roots[corpus] is None:
                raise DataDirError(f"{name} needs the librispeech_finetuning tree (--finetuning_dir)")
            utterances += scan_tree(roots[corpus] / relative)
        write_data_dir(directory, utterances, num_jobs, alignments)
        counts[name] = validate_data_dir(directory, num_jobs)
        atomic_write_text(directory / ".done", marker)
        log(f"[prepare] {directory}: {counts[name]} utterances")
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
