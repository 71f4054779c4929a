"""Stage 6: Viterbi and lexicon + n-gram CTC decoding of data dirs with a fine-tuned ESPnet model.

Emissions are computed once per data dir (``<output_dir>/<set>/emissions.npz``) and reused by
every setting. With ``--lexicon`` and ``--lm``, the LM weight and word score are searched on
``--tune_set`` at the config's ``tune_beam``, then every test set is decoded at ``final_beam``.

Example::

    python -m dinosr_espnet.bin.decode --asr_train_config exp/finetune_dinosr_10m_seed1/config.yaml \\
        --asr_model_file exp/finetune_dinosr_10m_seed1/valid.cer_ctc.best.pth \\
        --lexicon data/local/lm/lexicon.txt --lm data/local/lm/4gram.bin --decode_config conf/decode.yaml \\
        --tune_set dump/dev_other --test_sets "dump/dev_clean dump/dev_other dump/test_clean dump/test_other" \\
        --output_dir exp/finetune_dinosr_10m_seed1/decode
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path

import dinosr_espnet  # noqa: F401  (registration hook, before ESPnet is imported)
from dinosr_espnet.decode.cli import (add_audio_arguments, add_device_arguments, add_model_arguments, new_parser,
                                      requested_device)


def get_parser() -> argparse.ArgumentParser:
    parser = new_parser("python -m dinosr_espnet.bin.decode", __doc__)
    add_model_arguments(parser, "model .pth of the fine-tuning run", "where <set>/<mode>/ outputs go")
    parser.add_argument("--test_sets", nargs="+", required=True,
                        help="data dirs to decode (one quoted, space-separated string or several arguments)")
    parser.add_argument("--tune_set", type=Path, default=None,
                        help="data dir on which LM weight / word score are searched (default: none, use defaults)")
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon.txt from bin/build_lm (default: Viterbi only)")
    parser.add_argument("--lm", type=Path, default=None, help="KenLM ARPA or binary (default: Viterbi only)")
    parser.add_argument("--lm_mode", default="4gram", help="output sub-directory name of LM decoding (default: 4gram)")
    parser.add_argument("--decode_config", type=Path, default=None, help="decode YAML, e.g. conf/decode.yaml")
    parser.add_argument("--num_workers", type=int, default=None,
                        help="processes for lexicon decoding (default: the decode config's num_workers, 1)")
    add_device_arguments(parser, "cpu, cuda or auto (default: auto) for the encoder forward")
    add_audio_arguments(parser)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from dinosr_espnet.decode.decode_config import load_decode_config
    from dinosr_espnet.decode.pipeline import run_decoding

    test_sets = [Path(p) for item in args.test_sets for p in item.split()]
    device = requested_device(args)  # "auto" is resolved on use, only if emissions must be computed
    started = time.time()
    try:
        config = load_decode_config(args.decode_config)
        if args.num_workers is not None:
            config = dataclasses.replace(config, num_workers=args.num_workers)
        run_decoding(args.asr_train_config, args.asr_model_file, args.output_dir, test_sets, config, tune_set=args.tune_set, lexicon=args.lexicon,
                     lm=args.lm, lm_mode=args.lm_mode, device=device, trust_checkpoint=args.trust_checkpoint,
                     allow_wav_scp_pipes=args.allow_wav_scp_pipes == "true")
    except (FileNotFoundError, ValueError) as error:
        print(f"decode: error: {error}", file=sys.stderr)
        return 2
    print(f"[decode] done in {time.time() - started:.1f} s -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
