"""ESPnet's ASR training with this project's classes registered (``encoder: dinosr``).

Usage is that of ``python -m espnet2.bin.asr_train`` (see ``--help``) plus, from ``asr/task.py``:
``--pretrained_model exp/pretrain_<tag>/model.pth`` (the DinoSR encoder's initialisation, a plain
path: not parsed as YAML) and ``--trust_checkpoint`` (unpickle checkpoints in full; only for
files you trust). Checkpoints are saved atomically, ``checkpoint.pth`` last, and the run's
``config.yaml`` + model file decode without the pre-training directory.
The CTC output layer starts as fairseq's (xavier-uniform weight, zero bias).
"""
import dinosr_espnet  # noqa: F401  (installs the registration hook before ESPnet is imported)
from dinosr_espnet.registry import register_now


def main(cmd=None):
    register_now()
    from dinosr_espnet.asr.task import DinoSRASRTask
    from dinosr_espnet.tasks.conf_options import safe_conf_options

    safe_conf_options()

    DinoSRASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
