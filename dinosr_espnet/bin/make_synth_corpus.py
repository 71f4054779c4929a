"""Generate the offline synthetic LibriSpeech-format corpus (flite, festival and mbrola voices, Debian).

    python -m dinosr_espnet.bin.make_synth_corpus --out corpus --seed 1 --nj 2          # demo size
    python -m dinosr_espnet.bin.make_synth_corpus --out corpus --seed 1 --tiny          # CI size, < 30 s

Writes OUT/LibriSpeech/<part>/..., OUT/librispeech_finetuning/{1h,9h}/..., OUT/frame_phones.txt,
OUT/lm_text.txt, OUT/speakers.tsv and OUT/corpus_info.json (see dinosr_espnet/data/synth_corpus.py).
Voice roles and test conditions (dinosr_espnet/data/synth_plan.py): the labeled splits come from the
--labeled_identities voices only; dev-clean/test-clean are the other training voices (heard in the
unlabeled set only, condition a); dev-other/test-other the --heldout_identities (heard nowhere, b).
Deterministic for a seed; re-running resumes an interrupted run and skips a complete one.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from dinosr_espnet.data.synth_corpus import generate_corpus
from dinosr_espnet.data.synth_plan import DEFAULT_HELDOUT_IDENTITIES, DEFAULT_LABELED_IDENTITIES, CorpusSizes
from dinosr_espnet.data.text_sources import MissingTextSourceError
from dinosr_espnet.data.tts import MissingToolError


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    default = CorpusSizes()
    group = parser.add_argument_group("sizes (defaults: the demo corpus, 20 h unlabeled)")
    group.add_argument("--tiny", action="store_true", help="CI size: ~4.5 min of audio, generates in seconds")
    group.add_argument("--unlabeled_hours", type=float, default=None,
                       help=f"total of the three train parts, split 40/20/40 "
                            f"(default {(default.train_clean_100 + default.train_clean_360 + default.train_other_500) / 3600:g})")
    group.add_argument("--eval_minutes", type=float, default=None,
                       help=f"each of dev-clean/dev-other/test-clean/test-other (default {default.eval_part / 60:g})")
    group.add_argument("--fold_minutes", type=float, default=None,
                       help=f"each of the six 1h/<k> fine-tuning folds (default {default.finetune_fold / 60:g})")
    group.add_argument("--ninehour_hours", type=float, default=None,
                       help=f"the scaled-down 9h fine-tuning part (default {default.finetune_9h / 3600:g})")


def sizes_from_arguments(args: argparse.Namespace) -> CorpusSizes:
    sizes = CorpusSizes.tiny() if args.tiny else CorpusSizes()
    changes = {}
    if args.unlabeled_hours is not None:
        total = args.unlabeled_hours * 3600
        changes.update(train_clean_100=0.4 * total, train_clean_360=0.2 * total, train_other_500=0.4 * total)
    if args.eval_minutes is not None:
        changes["eval_part"] = args.eval_minutes * 60
    if args.fold_minutes is not None:
        changes["finetune_fold"] = args.fold_minutes * 60
    if args.ninehour_hours is not None:
        changes["finetune_9h"] = args.ninehour_hours * 3600
    return CorpusSizes(**{**sizes.__dict__, **changes})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="corpus directory")
    parser.add_argument("--seed", type=int, default=1, help="seed for speakers, warps and sentences (default 1)")
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis workers (default 2)")
    parser.add_argument("--text_sources", nargs="+", default=["bible", "wordnet"], choices=["bible", "wordnet"],
                        help="sentence sources (default: bible wordnet)")
    parser.add_argument("--heldout_identities", nargs="+", default=list(DEFAULT_HELDOUT_IDENTITIES),
                        help="recorded speakers whose voices are kept for dev-other/test-other only, "
                             "condition (b) (default: rms)")
    parser.add_argument("--labeled_identities", nargs="+", default=list(DEFAULT_LABELED_IDENTITIES),
                        help="recorded speakers whose voices make the labeled splits; the other training "
                             "voices make dev-clean/test-clean, condition (a) "
                             f"(default: {' '.join(DEFAULT_LABELED_IDENTITIES)})")
    add_size_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = generate_corpus(args.out, args.seed, sizes_from_arguments(args), args.nj,
                               args.text_sources, args.heldout_identities, args.labeled_identities)
    except (MissingToolError, MissingTextSourceError, ValueError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"hours_per_part": info["hours_per_part"], "speakers_per_part": info["speakers_per_part"],
                      "unlabeled_speakers": info["unlabeled_speakers"], "bytes": info["bytes"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
