"""ESPnet's ASR inference with this project's classes registered.

Usage is that of ``python -m espnet2.bin.asr_inference``; see ``--help``.
"""
import dinosr_espnet  # noqa: F401  (installs the registration hook before ESPnet is imported)
from dinosr_espnet.registry import register_now


def main(cmd=None):
    register_now()
    from espnet2.bin import asr_inference

    asr_inference.main(cmd)


if __name__ == "__main__":
    main()
