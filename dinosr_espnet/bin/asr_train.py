"""ESPnet's ASR training with this project's classes registered (``encoder: dinosr``).

Usage is exactly that of ``python -m espnet2.bin.asr_train``; see ``--help``. The task is
``asr.task.DinoSRASRTask``: ESPnet's ASRTask with fairseq's init of the CTC output layer.
"""
import dinosr_espnet  # noqa: F401  (installs the registration hook before ESPnet is imported)
from dinosr_espnet.registry import register_now


def main(cmd=None):
    register_now()
    from dinosr_espnet.asr.task import DinoSRASRTask

    DinoSRASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
