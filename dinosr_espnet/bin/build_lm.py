"""Stage 5: a word n-gram LM (KenLM) and the lexicon of its vocabulary spelled in CTC tokens.

From LM text (``--text``, built with ``lmplz -o ORDER --discount_fallback`` + ``build_binary``) or an
existing ARPA (``--arpa``, e.g. the official LibriSpeech 4-gram, .gz accepted). Writes
``OUT/<order>gram.arpa``, ``OUT/<order>gram.bin`` and ``OUT/lexicon.txt`` (``WORD<TAB>W O R D <space>``;
words with characters outside the token list are skipped and counted). Re-running skips
what is up to date.
"""
import argparse
import sys
from pathlib import Path

from dinosr_espnet.decode.lm_building import DEFAULT_KENLM_BIN_DIR, build_lm


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dinosr_espnet.bin.build_lm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("LM source (--text, or --arpa which takes precedence)")
    source.add_argument("--text", type=Path, default=None, help="normalised LM text, one sentence per line")
    source.add_argument("--arpa", type=Path, default=None, help="an existing ARPA file (plain or .gz)")
    parser.add_argument("--order", type=int, default=4, help="n-gram order (default: 4)")
    parser.add_argument("--token_list", type=Path, required=True, help="ESPnet char tokens.txt")
    parser.add_argument("--out_dir", type=Path, required=True, help="output directory, e.g. data/local/lm")
    parser.add_argument("--kenlm_bin_dir", type=Path, default=None,
                        help=f"directory with lmplz and build_binary (default: {DEFAULT_KENLM_BIN_DIR})")
    parser.add_argument("--word_boundary", default=None,
                        help="word-boundary token ending each spelling (default: <space>, else |)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    text = None if args.arpa is not None else args.text
    if text is None and args.arpa is None:
        print("build_lm: error: give --text or --arpa", file=sys.stderr)
        return 2
    try:
        build_lm(args.out_dir, args.token_list, text=text, arpa=args.arpa, order=args.order,
                 kenlm_bin_dir=args.kenlm_bin_dir, word_boundary=args.word_boundary)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"build_lm: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
