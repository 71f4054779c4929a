"""Scoring: WER / CER of one hypothesis against references, or RESULTS.md for an experiment tree.

Stage 7 (tables over ``exp/finetune_<tag>_<split>_seed<seed>/decode/<set>/<mode>/score.json``; also
writes RESULTS.json beside the table and the pre-training curves of ``exp/pretrain_*/train.log``)::

    python -m dinosr_espnet.bin.score --exp_root exp --output RESULTS.md [--paper_table librispeech] \\
        [--notes local/tuning_notes.md]

One set (Kaldi ``text`` files; writes ref.trn, hyp.trn, score.json into --output_dir)::

    python -m dinosr_espnet.bin.score --ref data/test_clean/text --hyp exp/.../1best_recog/text --output_dir DIR
"""
import argparse
import json
import sys
from pathlib import Path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.score", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    table = parser.add_argument_group("results table (stage 7)")
    table.add_argument("--exp_root", type=Path, default=None, help="directory holding finetune_* runs")
    table.add_argument("--output", type=Path, default=Path("RESULTS.md"), help="table file (default: RESULTS.md)")
    table.add_argument("--paper_table", default=None, choices=["librispeech"],
                       help="add the paper's DinoSR WERs (spec 5.2) as extra rows")
    table.add_argument("--notes", type=Path, default=None,
                       help="markdown file appended to the table file as is (e.g. what was tried)")
    one = parser.add_argument_group("one set")
    one.add_argument("--ref", type=Path, default=None, help="reference Kaldi text")
    one.add_argument("--hyp", type=Path, default=None, help="hypothesis Kaldi text")
    one.add_argument("--utt2spk", type=Path, default=None, help="utt2spk for the trn speaker field (optional)")
    one.add_argument("--output_dir", type=Path, default=None, help="where ref.trn, hyp.trn, score.json go")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from dinosr_espnet.data.kaldi_data import read_table_map

    try:
        if args.exp_root is not None:
            from dinosr_espnet.decode.results_table import write_results

            scores = write_results(args.exp_root, args.output, args.paper_table, notes=args.notes)
            print(f"[score] {len(scores)} scores -> {args.output}")
            return 0
        if args.ref is None or args.hyp is None or args.output_dir is None:
            print("score: error: give --exp_root, or --ref, --hyp and --output_dir", file=sys.stderr)
            return 2
        from dinosr_espnet.decode.scoring import score_set

        references, hypotheses = read_table_map(args.ref), read_table_map(args.hyp)
        utt2spk = read_table_map(args.utt2spk) if args.utt2spk else None
        summary = score_set(args.output_dir, references, hypotheses, utt2spk)
    except (FileNotFoundError, ValueError) as error:
        print(f"score: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("wer", "cer")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
