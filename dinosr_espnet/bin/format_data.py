"""Recipe stage 2: validate Kaldi data dirs and write the ``dump/`` copies the training stages read.

For each set, ``dump/<set>/`` gets the data dir's files restricted to the utterances that pass
the duration filter, plus ``speech_shape``, ``text_shape.char`` and ``dropped.txt`` (every removed
utterance and why; see ``data/dump.py``). It also writes the character token list and a copy of
the LM text::

    python -m dinosr_espnet.bin.format_data --data_dir data --dump_dir dump \\
        --pretrain_sets train_960 --finetune_sets "train_10m train_1h" \\
        --eval_sets "dev_clean dev_other test_clean test_other"

Duration filter: pre-training sets keep [--min_duration, --max_duration] seconds; fine-tuning
sets keep [--finetune_min_duration, --finetune_max_duration (0 = no limit)]; evaluation sets keep
at least --eval_min_duration. The two minimums (0.5 s) are below every LibriSpeech and Libri-light
utterance, so the official sets are unchanged; they remove clips too short to hold a transcript's
CTC alignment. Every data dir is validated (``data/kaldi_data.py``, audio headers by default) and
every problem of every set is listed before anything is written. ``--subsets "NAME:SOURCE:COUNT ..."``
also writes ``dump/NAME``: COUNT utterances spread evenly over the sorted ids of the labelled data dir
SOURCE (all of them if it has fewer), unfiltered, e.g. ``train_fit:train_10m:100`` to score a model on
its own training data. ``--validate_only`` writes nothing.
"""
import argparse
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from dinosr_espnet.atomic_files import atomic_path
from dinosr_espnet.asr.token_list import char_token_list, write_char_token_list
from dinosr_espnet.constants import SAMPLE_RATE
from dinosr_espnet.data.dump import parse_subsets, select_utterances, spread_subset, write_dump_set
from dinosr_espnet.data.kaldi_data import DataDirError, load_data_dir


def _true(value: str) -> bool:
    return value == "true"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="data", help="where stage 1 wrote the Kaldi data dirs")
    parser.add_argument("--dump_dir", default="dump", help="where to write dump/<set>/")
    parser.add_argument("--pretrain_sets", default="", help="space-separated; duration filter [min, max]")
    parser.add_argument("--finetune_sets", default="", help="space-separated; labelled")
    parser.add_argument("--eval_sets", default="", help="space-separated; labelled, minimum only")
    parser.add_argument("--subsets", default="",
                        help="space-separated NAME:SOURCE:COUNT: dump/NAME = COUNT utterances spread over the "
                             "labelled data dir SOURCE, never filtered (e.g. train_fit:train_10m:100)")
    parser.add_argument("--min_duration", type=float, default=2.0, help="pre-training minimum, seconds")
    parser.add_argument("--max_duration", type=float, default=20.0, help="pre-training maximum, seconds")
    parser.add_argument("--finetune_min_duration", type=float, default=0.5, help="fine-tuning minimum, seconds")
    parser.add_argument("--finetune_max_duration", type=float, default=0.0,
                        help="fine-tuning maximum, seconds; 0 = no limit")
    parser.add_argument("--eval_min_duration", type=float, default=0.5,
                        help="evaluation minimum, seconds (dropped utterances are listed in dropped.txt)")
    parser.add_argument("--token_list", default="data/token_list/char/tokens.txt")
    parser.add_argument("--lm_text", default="data/local/lm/lm_text.txt",
                        help="LM text from stage 1; copied to <dump_dir>/lm_text.txt ('' to skip)")
    parser.add_argument("--check_audio", default="true", choices=["full", "true", "exists", "false"],
                        help="audio check: full = decode every file, true = headers (FLAC/WAV content, 16 kHz "
                             "mono, length = utt2num_samples), exists = the files exist, false = none")
    parser.add_argument("--allow_wav_scp_pipes", default="false", choices=["true", "false"],
                        help="accept wav.scp commands ending in '|' (they run a shell); refused by default")
    parser.add_argument("--validate_only", default="false", choices=["true", "false"],
                        help="check the data dirs, write nothing")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    data_root, dump_root = Path(args.data_dir), Path(args.dump_dir)
    groups = [(args.pretrain_sets.split(), args.min_duration, args.max_duration, False),
              (args.finetune_sets.split(), args.finetune_min_duration, args.finetune_max_duration, True),
              (args.eval_sets.split(), args.eval_min_duration, 0.0, True)]
    try:
        subsets = parse_subsets(args.subsets)
    except ValueError as error:
        print(f"format_data: {error}", file=sys.stderr)
        return 2
    if not any(sets for sets, *_ in groups) and not subsets:
        print("format_data: no sets given (--pretrain_sets/--finetune_sets/--eval_sets)", file=sys.stderr)
        return 2
    level = {"true": "header", "false": "none"}.get(args.check_audio, args.check_audio)
    loaded, problems = [], []
    for sets, low, high, require_text in groups:
        for name in sets:
            try:
                loaded.append((load_data_dir(data_root / name, require_text, level,
                                             allow_wav_scp_pipes=_true(args.allow_wav_scp_pipes)), name, low, high))
            except DataDirError as error:
                problems += error.problems
    subset_sources = {}
    for source in sorted({source for _, source, _ in subsets}):
        try:
            subset_sources[source] = load_data_dir(data_root / source, True, level,
                                                   allow_wav_scp_pipes=_true(args.allow_wav_scp_pipes))
        except DataDirError as error:
            problems += error.problems
    lm_text = Path(args.lm_text) if args.lm_text else None
    if lm_text is not None and not lm_text.is_file():
        problems.append(f"{lm_text}: LM text missing (stage 1 writes it)")
    selections = []
    for data_dir, name, low, high in loaded:
        kept, dropped = select_utterances(data_dir, low, high, SAMPLE_RATE)
        if not kept:
            problems.append(f"{data_dir.path}: every utterance was dropped by the duration filter "
                            f"[{low}, {high or 'inf'}] s")
        selections.append((data_dir, name, kept, dropped))
    if problems:
        print(f"format_data: {DataDirError(problems)}", file=sys.stderr)
        return 1
    if _true(args.validate_only):
        print(f"format_data: {len(loaded) + len(subset_sources)} data dirs are valid")
        return 0
    write_char_token_list(args.token_list)
    vocabulary_size = len(char_token_list())
    print(f"format_data: wrote {args.token_list} ({vocabulary_size} tokens)")
    for data_dir, name, kept, dropped in selections:
        write_dump_set(data_dir, dump_root / name, kept, dropped, vocabulary_size)
        print(f"format_data: {dump_root / name}: kept {len(kept)}, dropped {len(dropped)} (see dropped.txt)")
        if dropped and name in args.eval_sets.split():
            print(f"format_data: warning: {len(dropped)} utterances of evaluation set {name} are shorter than "
                  f"{args.eval_min_duration} s and not scored (listed in {dump_root / name / 'dropped.txt'})",
                  file=sys.stderr)
    for name, source, count in subsets:
        kept = spread_subset(subset_sources[source].utt_ids, count)
        write_dump_set(subset_sources[source], dump_root / name, kept, [], vocabulary_size)
        print(f"format_data: {dump_root / name}: {len(kept)} utterances of {data_root / source}")
    if lm_text is not None:
        dump_root.mkdir(parents=True, exist_ok=True)
        with atomic_path(dump_root / "lm_text.txt") as temporary:
            shutil.copyfile(lm_text, temporary)
        print(f"format_data: copied {lm_text} to {dump_root / 'lm_text.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
