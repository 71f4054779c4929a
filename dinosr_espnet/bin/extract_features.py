"""Layer features and discrete units of a pre-trained DinoSR / data2vec model, for downstream work.

    python -m dinosr_espnet.bin.extract_features MODEL_DIR OUT_DIR --data_dir data/dev_clean \
        --layers 5,8 --units codebook,head
    python -m dinosr_espnet.bin.extract_features MODEL_DIR OUT_DIR --audio a.flac b.wav --layers 12 --format npy

MODEL_DIR: a pre-training dir (config.yaml with 'model: dinosr|data2vec', model.pth).
Inputs: --data_dir (Kaldi dir with wav.scp; utt2num_samples or speech_shape, when present, saves
reading audio twice), --audio FILE ... or --audio_list FILE (one path per line; id = file name stem).
Outputs in OUT_DIR (complete or absent: written beside it, renamed at the end):
  layer<l>                  hidden state after Transformer layer l (0 = its input), [frame, dim] float32,
                            of the student (default) or the teacher (--encoder teacher)
  codebook_units_layer<l>   nearest codeword of layer l's codebook to the instance-normalised teacher
                            target: exactly pre-training's assignment, [frame] int32
  head_units_layer<l>       argmax of the student's prediction head for that codebook, [frame] int32
as <name>.ark + <name>.scp (--format ark, read with kaldiio.load_scp) or <name>/<utt>.npy (--format npy),
plus utt2num_frames and extraction.json.
Frames of the official CNN: 50 Hz; frame t covers samples [320 t, 320 t + 400) at 16 kHz; T = (N - 400) // 320 + 1
(the demo's log-mel front end, time strides 2, 2: 25 Hz, stride 640); extraction.json records the geometry.
Utterances are batched by length; padding does not change any output.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional


def _numbers(text: str) -> List[int]:
    try:
        return [int(item) for item in text.replace(" ", "").split(",") if item]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers, got {text!r}") from None


def _names(text: str) -> List[str]:
    return [item for item in text.replace(" ", "").split(",") if item and item != "none"]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.extract_features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="pre-training dir (config.yaml, model.pth)")
    parser.add_argument("out_dir", type=Path, help="directory to write (must not exist or be empty)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data_dir", type=Path, help="Kaldi data dir with wav.scp")
    source.add_argument("--audio", nargs="+", help="audio files (16 kHz mono)")
    source.add_argument("--audio_list", type=Path, help="text file, one audio path per line")
    parser.add_argument("--layers", type=_numbers, default=[], help="hidden states to write, e.g. 1,4,8 (0..L)")
    parser.add_argument("--units", type=_names, default=[], help="codebook, head or codebook,head (default: none)")
    parser.add_argument("--unit_layers", type=_numbers, default=[],
                        help="target layers whose units to write (default: every codebook's layer)")
    parser.add_argument("--encoder", choices=("student", "teacher"), default="student",
                        help="whose hidden states --layers writes (default: %(default)s)")
    parser.add_argument("--format", choices=("ark", "npy"), default="ark", help="default: %(default)s")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    parser.add_argument("--max_batch_seconds", type=float, default=160.0,
                        help="padded audio per batch (default: %(default)s)")
    parser.add_argument("--max_batch_size", type=int, default=16, help="utterances per batch (default: %(default)s)")
    parser.add_argument("--checkpoint", default=None, help="state dict in MODEL_DIR (default: model.pth)")
    parser.add_argument("--allow_wav_scp_commands", action="store_true",
                        help="run wav.scp entries that are shell commands ('cmd |'); refused otherwise")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    from dinosr_espnet.decode.emissions import default_device
    from dinosr_espnet.export import extraction
    from dinosr_espnet.export.features import FeatureRequest

    try:
        if args.data_dir is not None:
            inputs = extraction.data_dir_inputs(args.data_dir)
        elif args.audio_list is not None:
            inputs = extraction.audio_list_inputs(args.audio_list)
        else:
            inputs = extraction.audio_file_inputs(args.audio)
        request = FeatureRequest(layers=tuple(args.layers), units=tuple(args.units),
                                 unit_layers=tuple(args.unit_layers), encoder=args.encoder)
        summary = extraction.extract(
            args.model_dir, args.out_dir, inputs, request, output_format=args.format,
            device=default_device(args.device), max_batch_seconds=args.max_batch_seconds,
            max_batch_size=args.max_batch_size, checkpoint=args.checkpoint, overwrite=args.overwrite,
            allow_commands=args.allow_wav_scp_commands,
            progress=None if args.quiet else extraction.progress_bar())
    except (FileNotFoundError, ValueError) as error:
        print(f"extract_features: error: {error}", file=sys.stderr)
        return 1
    print(f"extract_features: {summary['utterances']} utterances, {summary['frames']} frames "
          f"({', '.join(summary['outputs'])}) -> {args.out_dir} in {summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
