"""DinoSR / data2vec pre-training with ESPnet's Trainer (multi-GPU, AMP, exact resume).

Usage (see --help for every option):
    python -m dinosr_espnet.bin.dinosr_train --config conf/pretrain_dinosr_base.yaml --ngpu 8 \
        --output_dir exp/pretrain_dinosr \
        --train_data_path_and_name_and_type dump/train_960/wav.scp,speech,sound \
        --train_shape_file dump/train_960/speech_shape \
        --valid_data_path_and_name_and_type dump/dev_clean/wav.scp,speech,sound \
        --valid_shape_file dump/dev_clean/speech_shape --resume true

Several processes: ``--ngpu N`` spawns N (ESPnet's --multiprocessing_distributed, default on
for N > 1), or run under ``torchrun`` / ``python -m espnet2.bin.launch`` with
``--multiprocessing_distributed false`` (CPU: ``--ngpu 0 --dist_backend gloo``).
Leaves ``<output_dir>/model.pth`` (``ssl.*`` keys) and ``config.yaml``.
"""
import dinosr_espnet  # noqa: F401  (installs the registration hook before ESPnet is imported)


def main(cmd=None):
    # Importing the task imports espnet2.tasks.abs_task, whose registries (our scheduler) the
    # hook fills right then; the ASR registries are not needed here, so they are not imported.
    from dinosr_espnet.tasks.conf_options import safe_conf_options
    from dinosr_espnet.tasks.dinosr import DinoSRTask

    safe_conf_options()  # --*_conf values: yaml.safe_load, never objects

    DinoSRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
