"""Kaldi data dirs from a LibriSpeech-layout tree and a librispeech_finetuning tree.

Writes ``<datadir>/{train_960,train_10m,train_1h,train_10h,train_clean_100,dev_clean,dev_other,
test_clean,test_other}`` (wav.scp, text, utt2spk, spk2utt, utt2num_samples, and frame_phones when
--frame_phones is given), validates each, and writes ``<datadir>/local/lm/lm_text.txt`` from
--lm_text and ``official_4gram.arpa.gz`` from --arpa. Used for the real corpora and, unchanged,
for the synthetic one.

    python -m dinosr_espnet.bin.prepare_librispeech --librispeech_dir DB/LibriSpeech \\
        --finetuning_dir DB/librispeech_finetuning --datadir data --nj 4 \\
        [--lm_text DB/lm/librispeech-lm-norm.txt.gz] [--arpa DB/lm/4-gram.arpa.gz --lexicon ...]
"""
import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from dinosr_espnet.data.kaldi_data import DataDirError
from dinosr_espnet.data.librispeech import DATA_SETS, install_official_lm, prepare_data_dirs, write_lm_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--librispeech_dir", type=Path, required=True,
                        help="directory holding train-clean-100/, dev-clean/, ... (the extracted LibriSpeech/)")
    parser.add_argument("--finetuning_dir", type=Path, default=None,
                        help="the extracted librispeech_finetuning/ (1h/<k>/{clean,other}, 9h/...); "
                             "needed for train_10m, train_1h, train_10h")
    parser.add_argument("--datadir", type=Path, default=Path("data"), help="output root (default: data)")
    parser.add_argument("--sets", nargs="+", default=list(DATA_SETS), choices=list(DATA_SETS),
                        help="data dirs to write (default: all)")
    parser.add_argument("--nj", type=int, default=1, help="parallel audio checks (default: 1)")
    parser.add_argument("--frame_phones", type=Path, default=None,
                        help="file of '<utt> <phone_1> ... <phone_T>' lines to copy into each dir as frame_phones")
    parser.add_argument("--lm_text", type=Path, default=None,
                        help="LM sentences (plain or .gz) -> <datadir>/local/lm/lm_text.txt, dev/test sentences dropped")
    parser.add_argument("--arpa", type=Path, default=None,
                        help="official 4-gram ARPA (.gz) -> <datadir>/local/lm/official_4gram.arpa.gz")
    parser.add_argument("--lexicon", type=Path, default=None, help="librispeech-lexicon.txt to copy beside it")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.time()
    try:
        counts = prepare_data_dirs(args.librispeech_dir, args.finetuning_dir, args.datadir, args.sets,
                                   args.nj, args.frame_phones)
    except DataDirError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    if args.lm_text:
        kept = write_lm_text(args.lm_text, args.datadir)
        print(f"[prepare] {args.datadir}/local/lm/lm_text.txt: {kept} sentences", file=sys.stderr)
    if args.arpa:
        target = install_official_lm(args.arpa, args.datadir, args.lexicon)
        print(f"[prepare] {target}", file=sys.stderr)
    print(f"[prepare] {sum(counts.values())} utterances in {len(counts)} dirs, {time.time() - start:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
