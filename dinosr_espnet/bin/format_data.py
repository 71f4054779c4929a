"""Recipe stage 2: validate Kaldi data dirs and write the ``dump/`` copies the training stages read.

For each set, ``dump/<set>/`` gets the data dir's files restricted to the utterances that pass
the duration filter, plus ``speech_shape`` (= ``utt2num_samples``), ``text_shape.char``
(``<utt> <num_tokens>,<vocab>``, labelled sets only) and ``dropped.txt`` (every removed
utterance and why). It also writes the character token list and a copy of the LM text::

    python -m dinosr_espnet.bin.format_data --data_dir data --dump_dir dump \\
        --pretrain_sets train_960 --finetune_sets "train_10m train_1h" \\
        --eval_sets "dev_clean dev_other test_clean test_other"

Duration filter: pre-training sets keep [--min_duration, --max_duration] seconds; fine-tuning
sets keep up to --finetune_max_duration (0 = no limit) and have no minimum; evaluation sets are
never filtered. ``--subsets "NAME:SOURCE:COUNT ..."`` also writes ``dump/NAME``: COUNT utterances
spread evenly over the sorted ids of the labelled data dir SOURCE (all of them if it has fewer), unfiltered,
e.g. ``train_fit:train_10m:100`` to score a model on its own training data. ``--validate_only`` checks
the data dirs and writes nothing.
"""
import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from dinosr_espnet.asr.token_list import SPACE, char_token_list, write_char_token_list
from dinosr_espnet.data.kaldi_data import DataDirError, read_table_map

# Files a Kaldi data dir must have, and those copied to dump/ when present.
REQUIRED_FILES = ("wav.scp", "utt2spk", "utt2num_samples")
OPTIONAL_FILES = ("text", "frame_phones", "spk2utt")


@dataclass
class DataDir:
    """The per-utterance tables of one Kaldi data dir, each keyed by utterance id."""

    path: Path
    tables: Dict[str, Dict[str, str]] = field(default_factory=dict)

    @property
    def utterance_ids(self) -> List[str]:
        return list(self.tables["wav.scp"].keys())


def write_table(path: Path, table: Dict[str, str], keys: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for key in keys:
            value = table[key]
            handle.write(f"{key} {value}\n" if value else f"{key}\n")


def validate_data_dir(path: Path, require_text: bool = False, check_audio: bool = True) -> DataDir:
    """Load a data dir and check that its files agree; raise DataDirError naming the problem."""
    if not path.is_dir():
        raise DataDirError(f"{path}: data dir does not exist (did stage 1, local/data.sh, run?)")
    data_dir = DataDir(path)
    names = list(REQUIRED_FILES) + [name for name in OPTIONAL_FILES if (path / name).exists()]
    if require_text and "text" not in names:
        raise DataDirError(f"{path}/text: missing; a fine-tuning or evaluation set needs transcripts")
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise DataDirError(f"{path}/{name}: missing (a data dir needs {', '.join(REQUIRED_FILES)})")
    for name in names:
        data_dir.tables[name] = read_table_map(path / name, require_sorted=True)
    utterances = data_dir.tables["wav.scp"]
    if not utterances:
        raise DataDirError(f"{path}/wav.scp: no utterances")
    for name in names:
        if name == "spk2utt":
            continue
        table_keys = set(data_dir.tables[name])
        if table_keys != set(utterances):
            only_here = sorted(table_keys - set(utterances))[:3]
            missing = sorted(set(utterances) - table_keys)[:3]
            raise DataDirError(f"{path}/{name}: utterance ids differ from wav.scp "
                               f"(extra: {only_here}, missing: {missing})")
    for line_number, (utterance, value) in enumerate(data_dir.tables["utt2num_samples"].items(), start=1):
        if not value.isdigit() or int(value) <= 0:
            raise DataDirError(f"{path}/utt2num_samples:{line_number}: {utterance!r} has {value!r}, "
                               f"expected a positive sample count")
    if "text" in data_dir.tables:
        # Transcript characters = the char tokens that are single characters, plus the space.
        allowed = {token for token in char_token_list() if len(token) == 1} | {" "}
        for line_number, (utterance, transcript) in enumerate(data_dir.tables["text"].items(), start=1):
            if not transcript:
                raise DataDirError(f"{path}/text:{line_number}: empty transcript for {utterance!r}")
            unknown = sorted(set(transcript) - allowed)
            if unknown:
                raise DataDirError(f"{path}/text:{line_number}: {utterance!r} has characters outside "
                                   f"A-Z, apostrophe and space: {unknown}")
    if check_audio:
        for line_number, (utterance, location) in enumerate(utterances.items(), start=1):
            # A trailing "|" marks a command pipe (Kaldi convention); only plain paths are checked.
            if not location.endswith("|") and not os.path.isfile(location.split(":")[0]):
                raise DataDirError(f"{path}/wav.scp:{line_number}: audio file of {utterance!r} not found: "
                                   f"{location}")
    return data_dir


def char_tokens(transcript: str) -> List[str]:
    """Split an uppercase transcript into ESPnet char tokens (a space becomes ``<space>``)."""
    return [SPACE if character == " " else character for character in transcript]


def select_utterances(data_dir: DataDir, min_seconds: float, max_seconds: float,
                      sample_rate: int) -> Tuple[List[str], List[str]]:
    """Return (kept utterance ids, ``<utt> <reason>`` lines for the dropped ones)."""
    kept, dropped = [], []
    for utterance in data_dir.utterance_ids:
        seconds = int(data_dir.tables["utt2num_samples"][utterance]) / sample_rate
        if seconds < min_seconds:
            dropped.append(f"{utterance} too_short {seconds:.2f}s < {min_seconds}s")
        elif max_seconds > 0 and seconds > max_seconds:
            dropped.append(f"{utterance} too_long {seconds:.2f}s > {max_seconds}s")
        else:
            kept.append(utterance)
    return kept, dropped


def write_dump_set(data_dir: DataDir, output: Path, kept: List[str], dropped: List[str],
                   vocabulary_size: int) -> None:
    """Write dump/<set>/ into a temporary dir, then move it into place (never half-written)."""
    temporary = output.with_name(output.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    kept_set = set(kept)
    for name, table in data_dir.tables.items():
        if name == "spk2utt":
            continue
        write_table(temporary / name, table, kept)
    speakers: Dict[str, List[str]] = {}
    for utterance in kept:
        speakers.setdefault(data_dir.tables["utt2spk"][utterance], []).append(utterance)
    write_table(temporary / "spk2utt", {s: " ".join(u) for s, u in speakers.items()}, sorted(speakers))
    write_table(temporary / "speech_shape", data_dir.tables["utt2num_samples"], kept)
    if "text" in data_dir.tables:
        shapes = {u: f"{len(char_tokens(data_dir.tables['text'][u]))},{vocabulary_size}" for u in kept_set}
        write_table(temporary / "text_shape.char", shapes, kept)
    (temporary / "dropped.txt").write_text("".join(f"{line}\n" for line in dropped), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    temporary.rename(output)


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


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data", help="where stage 1 wrote the Kaldi data dirs")
    parser.add_argument("--dump_dir", default="dump", help="where to write dump/<set>/")
    parser.add_argument("--pretrain_sets", default="", help="space-separated; duration filter [min, max]")
    parser.add_argument("--finetune_sets", default="", help="space-separated; labelled, filtered by max only")
    parser.add_argument("--eval_sets", default="", help="space-separated; labelled, never filtered")
    parser.add_argument("--subsets", default="",
                        help="space-separated NAME:SOURCE:COUNT: dump/NAME = COUNT utterances spread over the "
                             "labelled data dir SOURCE, never filtered (e.g. train_fit:train_10m:100)")
    parser.add_argument("--min_duration", type=float, default=2.0, help="pre-training minimum, seconds")
    parser.add_argument("--max_duration", type=float, default=20.0, help="pre-training maximum, seconds")
    parser.add_argument("--finetune_max_duration", type=float, default=0.0,
                        help="fine-tuning maximum, seconds; 0 = no limit")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--token_list", default="data/token_list/char/tokens.txt")
    parser.add_argument("--lm_text", default="data/local/lm/lm_text.txt",
                        help="LM text from stage 1; copied to <dump_dir>/lm_text.txt ('' to skip)")
    parser.add_argument("--check_audio", default="true", choices=["true", "false"],
                        help="check that every wav.scp path exists")
    parser.add_argument("--validate_only", default="false", choices=["true", "false"],
                        help="check the data dirs, write nothing")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    data_root, dump_root = Path(args.data_dir), Path(args.dump_dir)
    groups = [(args.pretrain_sets.split(), args.min_duration, args.max_duration, False),
              (args.finetune_sets.split(), 0.0, args.finetune_max_duration, True),
              (args.eval_sets.split(), 0.0, 0.0, True)]
    try:
        subsets = parse_subsets(args.subsets)
    except ValueError as error:
        print(f"format_data: {error}", file=sys.stderr)
        return 2
    if not any(sets for sets, *_ in groups) and not subsets:
        print("format_data: no sets given (--pretrain_sets/--finetune_sets/--eval_sets)", file=sys.stderr)
        return 2
    try:
        loaded = [(validate_data_dir(data_root / name, require_text, args.check_audio == "true"),
                   name, low, high)
                  for sets, low, high, require_text in groups for name in sets]
        subset_sources = {source: validate_data_dir(data_root / source, True, args.check_audio == "true")
                          for source in sorted({source for _, source, _ in subsets})}
        lm_text = Path(args.lm_text) if args.lm_text else None
        if lm_text is not None and not lm_text.is_file():
            raise DataDirError(f"{lm_text}: LM text missing (stage 1 writes it)")
    except DataDirError as error:
        print(f"format_data: {error}", file=sys.stderr)
        return 1
    if args.validate_only == "true":
        print(f"format_data: {len(loaded) + len(subset_sources)} data dirs are valid")
        return 0
    write_char_token_list(args.token_list)
    vocabulary_size = len(char_token_list())
    print(f"format_data: wrote {args.token_list} ({vocabulary_size} tokens)")
    for data_dir, name, low, high in loaded:
        kept, dropped = select_utterances(data_dir, low, high, args.sample_rate)
        if not kept:
            print(f"format_data: every utterance of {data_dir.path} was dropped by the duration filter "
                  f"[{low}, {high or 'inf'}] s", file=sys.stderr)
            return 1
        write_dump_set(data_dir, dump_root / name, kept, dropped, vocabulary_size)
        print(f"format_data: {dump_root / name}: kept {len(kept)}, dropped {len(dropped)} (see dropped.txt)")
    for name, source, count in subsets:
        kept = spread_subset(subset_sources[source].utterance_ids, count)
        write_dump_set(subset_sources[source], dump_root / name, kept, [], vocabulary_size)
        print(f"format_data: {dump_root / name}: {len(kept)} utterances of {data_root / source}")
    if lm_text is not None:
        dump_root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lm_text, dump_root / "lm_text.txt")
        print(f"format_data: copied {lm_text} to {dump_root / 'lm_text.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
