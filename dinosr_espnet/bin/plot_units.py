"""Pictures of unit discovery: training curves from an ESPnet train.log, and (from the joint_counts.npz
that analyze_units writes) codebook-usage histograms and phone x codeword heat maps.

Examples:

    python -m dinosr_espnet.bin.plot_units --train_log exp/pretrain_dinosr/train.log --output_dir exp/pretrain_dinosr/plots
    python -m dinosr_espnet.bin.plot_units --units_dir exp/pretrain_dinosr/units_dev_clean --layers 5 6

Training curves: loss, target_ppl, pred_ppl, active_codewords, ema_decay and learning rate, each when the log
has it (per-interval training values against batch; epoch summaries of train/valid as markers).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_log", type=Path, default=None, help="ESPnet pre-training train.log")
    parser.add_argument("--units_dir", type=Path, default=None, help="output dir of analyze_units (joint_counts.npz)")
    parser.add_argument("--output_dir", type=Path, default=None,
                        help="where to write PNGs (default: UNITS_DIR, else the directory of TRAIN_LOG)")
    parser.add_argument("--layers", type=int, nargs="*", default=None,
                        help="layers to draw from joint_counts.npz (default: all)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.train_log is None and args.units_dir is None:
        parser.error("give --train_log and/or --units_dir")
    from dinosr_espnet.analysis.plots import plot_training_curves
    from dinosr_espnet.analysis.report import COUNTS_FILE, draw_unit_pictures, load_counts
    from dinosr_espnet.analysis.train_log import parse_train_log

    output_dir = args.output_dir or args.units_dir or args.train_log.parent
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if args.train_log is not None:
        if not args.train_log.is_file():
            print(f"error: {args.train_log}: no such file", file=sys.stderr)
            return 1
        path = plot_training_curves(parse_train_log(args.train_log), output_dir / "training_curves.png")
        if path is None:
            print(f"warning: {args.train_log} has no reporter lines with loss/target_ppl/...; no curves drawn",
                  file=sys.stderr)
        else:
            written.append(path)
    if args.units_dir is not None:
        counts_path = args.units_dir / COUNTS_FILE
        if not counts_path.is_file():
            print(f"error: {counts_path}: no such file (run analyze_units first)", file=sys.stderr)
            return 1
        phones, joint = load_counts(counts_path)
        try:
            written += draw_unit_pictures(phones, joint, output_dir, args.layers)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
