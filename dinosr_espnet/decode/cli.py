"""Command-line pieces shared by ``bin/decode.py`` and ``bin/asr_inference.py``.

Both load a fine-tuned ESPnet ASR model (train config + model file), write under an output dir and
pick a device ESPnet-style; keeping those options here keeps the two CLIs in step. Only argparse is
imported: the CLIs import ESPnet/torch lazily, after parsing.
"""
import argparse
from pathlib import Path


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser that prints ``description`` (the module docstring, with its example) verbatim."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_arguments(parser: argparse.ArgumentParser, model_file_help: str, output_dir_help: str) -> None:
    """``--asr_train_config``, ``--asr_model_file``, ``--output_dir`` (required), ``--trust_checkpoint``."""
    parser.add_argument("--asr_train_config", type=Path, required=True, help="config.yaml of the fine-tuning run")
    parser.add_argument("--asr_model_file", type=Path, required=True, help=model_file_help)
    parser.add_argument("--output_dir", type=Path, required=True, help=output_dir_help)
    from dinosr_espnet.checkpoint_io import add_trust_argument  # argparse only until it loads

    add_trust_argument(parser)


def add_device_arguments(parser: argparse.ArgumentParser, device_help: str) -> None:
    """``--device`` (cpu, cuda or auto) and ESPnet's ``--ngpu``, which overrides it."""
    parser.add_argument("--device", default="auto", help=device_help)
    parser.add_argument("--ngpu", type=int, default=None, help="ESPnet-style: 0 = cpu, >0 = cuda (overrides --device)")


def add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    """``--allow_wav_scp_pipes``: wav.scp commands ending in '|' run a shell, so they need this flag."""
    parser.add_argument("--allow_wav_scp_pipes", default="false", choices=["true", "false"],
                        help="read wav.scp entries that are commands ending in '|' (they run a shell; "
                             "refused by default). Bad audio is always fatal, every bad utterance named")


def requested_device(args: argparse.Namespace) -> str:
    """``cpu``/``cuda`` from ``--ngpu`` when given, else ``--device`` as given (``auto`` is left for
    ``emissions.default_device`` to resolve, which imports torch)."""
    if args.ngpu is not None:
        return "cuda" if args.ngpu else "cpu"
    return args.device
