"""Unit discovery analysis of a pre-trained DinoSR model against frame-level phone alignments.

For each target layer (codebook) and three kinds of units, (a) the online codebook (nearest codeword to
the instance-normed teacher target), (b) the student head's prediction (argmax on the final layer,
unmasked input) and (c) offline k-means fitted on the same teacher targets, reports active codewords, code
perplexity, cluster purity, phone purity and PNMI (HuBERT sec. IV-F definitions).

Example (recipe stage 8):

    python -m dinosr_espnet.bin.analyze_units --model_dir exp/pretrain_dinosr \\
        --data_dir data/dev_clean --output_dir exp/pretrain_dinosr/units_dev_clean
    python -m dinosr_espnet.bin.analyze_units --model_dir exp/pretrain_dinosr --random_init \\
        --data_dir data/dev_clean --output_dir exp/pretrain_dinosr/units_dev_clean_random_init

Inputs: MODEL_DIR/config.yaml (``model: dinosr``, ``model_conf``) and MODEL_DIR/model.pth (``ssl.*`` keys);
DATA_DIR/wav.scp and DATA_DIR/frame_phones (one ARPAbet-39/sil phone per 20 ms frame).
Outputs in OUTPUT_DIR: units.md, units.json, joint_counts.npz (re-plot with plot_units), usage_layer*.png,
phone_unit_*_layer*.png and, when MODEL_DIR/train.log exists, training_curves.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

from dinosr_espnet.analysis.alignments import AlignmentError
from dinosr_espnet.checkpoint_io import add_trust_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", type=Path, required=True, help="pre-training output dir (config.yaml, model.pth)")
    parser.add_argument("--data_dir", type=Path, required=True, help="data dir with wav.scp and frame_phones")
    parser.add_argument("--output_dir", type=Path, required=True, help="where to write the table, JSON and PNGs")
    parser.add_argument("--checkpoint", default="model.pth", help="state dict in MODEL_DIR (default: %(default)s)")
    parser.add_argument("--random_init", action="store_true",
                        help="build the architecture of config.yaml with random weights (seeded) instead of loading")
    parser.add_argument("--max_utterances", type=int, default=None, help="analyse only the first N utterances")
    parser.add_argument("--layers", type=int, nargs="+", default=None,
                        help="1-based Transformer layers to analyse, among the target layers (default: all of them)")
    parser.add_argument("--kmeans_clusters", type=int, default=256, help="offline k-means clusters (default: %(default)s)")
    parser.add_argument("--kmeans_iterations", type=int, default=10, help="Lloyd iterations (default: %(default)s)")
    parser.add_argument("--kmeans_max_frames", type=int, default=200000,
                        help="fit k-means on at most this many random frames; then assign all (default: %(default)s)")
    parser.add_argument("--plot_layers", type=int, nargs="*", default=None,
                        help="layers to draw usage histograms and heat maps for (default: the lowest analysed layer)")
    parser.add_argument("--train_log", type=Path, default=None,
                        help="ESPnet train.log to plot (default: MODEL_DIR/train.log when it exists)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random init, k-means and frame sampling")
    add_trust_argument(parser)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: %(default)s)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from dinosr_espnet.analysis.data_dir import read_data_dir
    from dinosr_espnet.analysis.model_loading import load_model
    from dinosr_espnet.analysis.plots import plot_training_curves
    from dinosr_espnet.analysis.report import draw_unit_pictures, markdown_table, save_counts, write_json, write_markdown
    from dinosr_espnet.analysis.train_log import parse_train_log
    from dinosr_espnet.analysis.unit_analysis import analyze_units
    from dinosr_espnet.analysis.unit_extraction import UnitExtractor

    started = time.time()
    try:
        model = load_model(args.model_dir, random_init=args.random_init, seed=args.seed, checkpoint_name=args.checkpoint,
                           trust_checkpoint=args.trust_checkpoint)
        extractor = UnitExtractor(model, args.device)
        utterances = read_data_dir(args.data_dir, args.max_utterances)
        print(f"analysing {len(utterances)} utterances of {args.data_dir} with "
              f"{'a randomly initialised' if args.random_init else 'the trained'} model of {args.model_dir} "
              f"(target layers {extractor.layers}) on {args.device}", flush=True)
        analysis = analyze_units(extractor, utterances, args.layers, kmeans_clusters=args.kmeans_clusters,
                                 kmeans_iterations=args.kmeans_iterations, kmeans_max_frames=args.kmeans_max_frames,
                                 seed=args.seed, log=lambda message: print(message, flush=True))
    except (AlignmentError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    args.output_dir.mkdir(parents=True, exist_ok=True)
    header = {"model_dir": str(args.model_dir), "random_init": args.random_init,
              "checkpoint": None if args.random_init else str(args.model_dir / args.checkpoint),
              "data_dir": str(args.data_dir), "seed": args.seed}
    write_json(analysis, args.output_dir / "units.json", header)
    write_markdown(analysis, args.output_dir / "units.md", header)
    save_counts(analysis, args.output_dir / "joint_counts.npz")
    plot_layers = args.plot_layers if args.plot_layers else [min(analysis.layers)]
    pictures = draw_unit_pictures(analysis.phones, analysis.joint, args.output_dir, plot_layers)
    train_log = args.train_log or (args.model_dir / "train.log")
    if train_log.is_file():
        curves_path = plot_training_curves(parse_train_log(train_log), args.output_dir / "training_curves.png")
        if curves_path:
            pictures.append(curves_path)
    print(markdown_table(analysis))
    print(f"wrote units.md, units.json, joint_counts.npz and {len(pictures)} PNGs to {args.output_dir} "
          f"({time.time() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
