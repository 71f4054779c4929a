"""Download and extract LibriSpeech, librispeech_finetuning.tgz and the LM resources, with resume
and checksum verification (see dinosr_espnet/data/download.py for the sources of the checksums).

    python -m dinosr_espnet.bin.download_librispeech --download_dir downloads [--no_lm] [--dry_run]

After it: downloads/LibriSpeech/<part>/..., downloads/librispeech_finetuning/..., downloads/4-gram.arpa.gz,
downloads/librispeech-lexicon.txt, downloads/librispeech-lm-norm.txt.gz. Re-running skips verified files.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from dinosr_espnet.data.download import LM_RESOURCES, RESOURCES, SPEECH_RESOURCES, ChecksumError, fetch_all


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--download_dir", type=Path, required=True, help="where archives go and are extracted")
    parser.add_argument("--resources", nargs="+", default=None, choices=sorted(RESOURCES),
                        help="subset to fetch (default: all speech archives, plus LM files unless --no_lm)")
    parser.add_argument("--no_lm", action="store_true", help="skip the openslr 11 LM resources")
    parser.add_argument("--dry_run", action="store_true",
                        help="print URL, approximate size, destination and checksum of each file; no network")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.resources or list(SPEECH_RESOURCES) + ([] if args.no_lm else list(LM_RESOURCES))
    try:
        fetch_all(names, args.download_dir, args.dry_run)
    except (ChecksumError, OSError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
