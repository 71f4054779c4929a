"""Export a DinoSR / data2vec model to Hugging Face transformers (no download, no pickle).

    python -m dinosr_espnet.bin.export_hf MODEL_DIR OUT_DIR

MODEL_DIR is either
  - a pre-training dir (config.yaml with 'model: dinosr|data2vec', model.pth), from pre-training or
    bin.import_fairseq: OUT_DIR gets a Data2VecAudioModel (config.json, model.safetensors), its
    Wav2Vec2FeatureExtractor and, for DinoSR, codebooks.safetensors (codewords, target layers, heads);
  - an ESPnet ASR experiment dir from bin.asr_train (config.yaml with 'encoder: dinosr', *.best.pth):
    OUT_DIR gets a Data2VecAudioForCTC and a Wav2Vec2Processor whose vocabulary is the token list
    (<blank> = CTC blank / pad token, <space> or | = word delimiter, <unk>).
OUT_DIR/README.md says how to load the export and how to compute units. OUT_DIR is written beside
itself and renamed at the end: it is complete or absent.

Load it:
    from transformers import Data2VecAudioModel, Wav2Vec2FeatureExtractor
    model = Data2VecAudioModel.from_pretrained("OUT_DIR")
    extractor = Wav2Vec2FeatureExtractor.from_pretrained("OUT_DIR")

Needs the optional transformers package (pip install 'dinosr_espnet[export]').
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.export_hf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="pre-training dir or ESPnet ASR experiment dir")
    parser.add_argument("out_dir", type=Path, help="directory to write (must not exist or be empty)")
    parser.add_argument("--checkpoint", default=None,
                        help="state dict in MODEL_DIR (default: model.pth for a pre-training dir, the only "
                             "*.best.pth for an ASR dir)")
    parser.add_argument("--encoder", choices=("student", "teacher"), default="student",
                        help="pre-trained models: export the student (default; what fine-tuning starts from) or "
                             "the EMA teacher's Transformer on the student's front end (whose layers the codebook "
                             "targets come from)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    from dinosr_espnet.export.huggingface import export_model

    try:
        summary = export_model(args.model_dir, args.out_dir, checkpoint=args.checkpoint, encoder=args.encoder,
                               overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as error:
        print(f"export_hf: error: {error}", file=sys.stderr)
        return 1
    print(f"export_hf: wrote {summary['kind']} model of {args.model_dir} to {args.out_dir}: "
          f"{', '.join(summary['files'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
