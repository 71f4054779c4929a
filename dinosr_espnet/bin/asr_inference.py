"""Greedy (Viterbi) CTC decoding of a data dir with a fine-tuned ESPnet ASR model, batched.

Writes ESPnet-style outputs in the data dir's order: ``<output_dir>/1best_recog/{text,token,token_int,score}``
(``score`` = log-probability of the best CTC path). The model is loaded with this project's
encoder classes registered, so ``encoder: dinosr`` resolves.

Example::

    python -m dinosr_espnet.bin.asr_inference --asr_train_config exp/finetune_dinosr_10m_seed1/config.yaml \\
        --asr_model_file exp/finetune_dinosr_10m_seed1/valid.cer_ctc.best.pth \\
        --data_dir dump/test_clean --output_dir exp/finetune_dinosr_10m_seed1/greedy/test_clean
"""
import argparse
import sys
import time
from pathlib import Path

import dinosr_espnet  # noqa: F401  (installs the registration hook before ESPnet is imported)
from dinosr_espnet.decode.cli import (add_audio_arguments, add_device_arguments, add_model_arguments, new_parser,
                                      requested_device)
from dinosr_espnet.registry import register_now


def get_parser() -> argparse.ArgumentParser:
    parser = new_parser("python -m dinosr_espnet.bin.asr_inference", __doc__)
    add_model_arguments(parser, "model .pth", "outputs go to <output_dir>/1best_recog/")
    parser.add_argument("--data_dir", type=Path, default=None, help="Kaldi data dir with wav.scp")
    parser.add_argument("--data_path_and_name_and_type", action="append", default=[],
                        help="ESPnet style, e.g. dump/test_clean/wav.scp,speech,sound (its directory is the data dir)")
    parser.add_argument("--batch_size", type=int, default=8, help="utterances per forward pass (default: 8)")
    add_device_arguments(parser, "cpu, cuda or auto (default: auto)")
    add_audio_arguments(parser)
    return parser


def _data_dir_of(args) -> Path:
    if args.data_dir is not None:
        return args.data_dir
    for spec in args.data_path_and_name_and_type:
        path, name, _ = (spec.split(",") + ["", ""])[:3]
        if name == "speech":
            if Path(path).name != "wav.scp":
                raise ValueError(f"--data_path_and_name_and_type {spec}: only wav.scp inputs are supported")
            return Path(path).parent
    raise ValueError("give --data_dir or --data_path_and_name_and_type <dir>/wav.scp,speech,sound")


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    register_now()  # before ESPnet builds the model: our encoder classes must be in its registries
    from dinosr_espnet.data.kaldi_data import read_data_dir
    from dinosr_espnet.decode.emissions import checked_audio_lengths
    from dinosr_espnet.decode.emissions import compute_emissions, default_device, load_asr_model
    from dinosr_espnet.decode.greedy import greedy_decode_all
    from dinosr_espnet.decode.pipeline import write_text
    from dinosr_espnet.decode.tokens import ctc_tokens

    try:
        data_dir = read_data_dir(_data_dir_of(args))
        allow_pipes = args.allow_wav_scp_pipes == "true"
        checked_audio_lengths(data_dir, allow_pipes)  # bad audio is fatal, every bad utterance named
        device = default_device(requested_device(args))
        model, token_list = load_asr_model(args.asr_train_config, args.asr_model_file, device,
                                           trust_checkpoint=args.trust_checkpoint)
    except (FileNotFoundError, ValueError) as error:
        print(f"asr_inference: error: {error}", file=sys.stderr)
        return 2
    tokens = ctc_tokens(token_list)
    started = time.time()
    try:
        emissions = compute_emissions(model, token_list, data_dir, args.batch_size, device, allow_pipes=allow_pipes)
    except ValueError as error:  # audio changed since the check
        print(f"asr_inference: error: {error}", file=sys.stderr)
        return 2
    hypotheses = greedy_decode_all(emissions.log_probs, tokens)
    out = args.output_dir / "1best_recog"
    out.mkdir(parents=True, exist_ok=True)
    utt_ids = emissions.utt_ids
    write_text(out / "token", utt_ids, [" ".join(tokens.tokens[i] for i in h.token_ids) for h in hypotheses])
    write_text(out / "token_int", utt_ids, [" ".join(map(str, h.token_ids)) for h in hypotheses])
    write_text(out / "score", utt_ids, [f"{h.score:.4f}" for h in hypotheses])
    write_text(out / "text", utt_ids, [h.text for h in hypotheses])  # last: its presence marks completion
    seconds = time.time() - started
    print(f"[asr_inference] {len(utt_ids)} utterances of {data_dir.path} in {seconds:.1f} s "
          f"(real-time factor {seconds / max(emissions.audio_seconds, 1e-9):.4f}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
