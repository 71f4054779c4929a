"""Convert Montreal Forced Aligner TextGrids into a ``frame_phones`` file (one phone per 20 ms frame).

Example (LibriSpeech dev-clean aligned with MFA's ARPAbet English model):

    python -m dinosr_espnet.bin.textgrid_to_frame_phones --textgrid_dir mfa_out/dev_clean \\
        --utt2num_samples data/dev_clean/utt2num_samples --output data/dev_clean/frame_phones

Every ``<utt-id>.TextGrid`` under ``--textgrid_dir`` (searched recursively) is read; its ``phones`` tier is
mapped to ARPAbet-39 (stress digits stripped, sil/sp/spn/empty -> sil) and frame i is labelled with the
phone at sample 320 i + 200, for T = (N-400)//320 + 1 frames.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from dinosr_espnet.analysis.alignments import AlignmentError, convert_textgrid_directory
from dinosr_espnet.data.kaldi_data import DataDirError, read_num_samples, write_frame_phones


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--textgrid_dir", type=Path, required=True, help="directory with <utt-id>.TextGrid files")
    parser.add_argument("--output", type=Path, required=True, help="frame_phones file to write")
    parser.add_argument("--utt2num_samples", type=Path, default=None,
                        help="<utt> <num_samples> file setting each utterance's frame count and which utterances "
                             "to keep (default: every TextGrid, length = its xmax)")
    parser.add_argument("--tier_name", default="phones", help="name of the phone tier (default: %(default)s)")
    parser.add_argument("--sample_rate", type=int, default=16000, help="audio sample rate (default: %(default)s)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    paths = sorted(args.textgrid_dir.rglob("*.TextGrid"))
    if not paths:
        print(f"error: no *.TextGrid files under {args.textgrid_dir}", file=sys.stderr)
        return 1
    try:
        lengths = read_num_samples(args.utt2num_samples) if args.utt2num_samples else None
        alignments = convert_textgrid_directory(paths, lengths, args.tier_name, args.sample_rate)
    except (AlignmentError, DataDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if lengths is not None:
        missing = sorted(set(lengths) - set(alignments))
        if missing:
            print(f"warning: {len(missing)} of {len(lengths)} utterances have no TextGrid "
                  f"(first: {missing[0]}); they are left out", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_frame_phones(args.output, alignments)
    print(f"wrote {len(alignments)} utterances to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
