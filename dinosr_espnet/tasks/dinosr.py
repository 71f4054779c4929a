"""DinoSR / data2vec pre-training as an ESPnet task (``python -m dinosr_espnet.bin.dinosr_train``).

- ``--model dinosr|data2vec`` (``nets.SSL_MODELS``) with ``--model_conf`` = ``DinoSRConfig``
  fields; an unknown key is an error that names it. ``config.yaml`` gets the *complete* config.
- Data: ``--train_data_path_and_name_and_type dump/x/wav.scp,speech,sound`` and
  ``--train_shape_file dump/x/speech_shape``. Batches as in the official setup: ``batch_type
  numel`` (``batch_bins`` = total samples over all GPUs), every utterance cropped to the shortest
  of its batch (random offset, at most ``--max_sample_size``), utterances shorter than
  ``--min_sample_size`` skipped, no padding.
- The teacher EMA, the teacher freeze and the update counter advance once per *applied* optimizer
  step (an optimizer step-post hook), not once per forward as in fairseq (spec 6.2). So
  ``--accum_grad x`` on N GPUs behaves like N*x GPUs, with the teacher updated once per
  (emulated) global batch; a step that AMP skips because of inf/NaN gradients calls no
  ``optimizer.step()`` and advances nothing. The codebooks likewise take one EMA step per applied
  optimizer step, on the statistics summed over its micro-batches, and the loss is the masked-frame
  mean over all micro-batches of the step (``pretrain_model.py``): exactly N*x GPUs.
- ``--crop_bucket_frames F`` (default 0 = off): crop lengths rounded down to a multiple of F
  output frames, so a run with ``model_conf: {compile: true}`` sees a few fixed shapes (one
  compiled graph each) and, with F even, no attention mask at all. Opt-in: each batch loses up to
  ``320 F - 1`` more samples per utterance than the official crop (0.64 s at F = 32, which gives
  29 shapes for 2-20 s crops, within ``nets/compilation.py``'s recompile limit).
- Checkpoints: ``--resume`` / ``--init_param`` load tensors only unless ``--trust_checkpoint
  true``; every save is atomic and ``checkpoint.pth`` is written last (``tasks/checkpoint.py``).
- ``--health_log_interval N``: a ``health:`` log line every N updates and collapse warnings
  (``health.py``).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.tasks.abs_task import AbsTask, IteratorOptions
from espnet2.train.class_choices import ClassChoices
from espnet2.train.distributed_utils import DistributedOption
from espnet2.utils.types import float_or_none

from dinosr_espnet.nets import SSL_MODELS
from dinosr_espnet.nets.config import DinoSRConfig
from dinosr_espnet.tasks.checkpoint import add_trust_argument, run_main_worker
from dinosr_espnet.tasks.collate import CropToShortestCollate, crop_bucket_samples
from dinosr_espnet.tasks.health import TrainingHealthMonitor
from dinosr_espnet.tasks.pretrain_model import SSLPretrainModel
from dinosr_espnet.tasks.shape_filter import write_filtered_shape_file
from dinosr_espnet.tasks.trainer import DinoSRTrainer

model_choices = ClassChoices("model", classes=dict(SSL_MODELS), type_check=torch.nn.Module,
                             default="dinosr")


def build_model_config(model_conf: Dict[str, Any]) -> DinoSRConfig:
    """``--model_conf`` -> DinoSRConfig; the error names the unknown keys and the option."""
    try:
        return DinoSRConfig.from_dict(dict(model_conf or {}))
    except (TypeError, ValueError) as error:
        raise ValueError(f"--model_conf / model_conf: {error}") from None


class DinoSRTask(AbsTask):
    num_optimizers: int = 1
    class_choices_list = [model_choices]
    trainer = DinoSRTrainer

    @classmethod
    def get_parser(cls):
        parser = super().get_parser()
        parser.description = ("DinoSR / data2vec pre-training with ESPnet's Trainer. Writes "
                              "<output_dir>/model.pth (ssl.* keys) and config.yaml.")
        return parser

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="DinoSR pre-training")
        group.add_argument("--max_sample_size", type=int, default=320000,
                           help="crop every utterance of a batch to the shortest one, capped at this "
                                "many samples (official 320000 = 20 s)")
        group.add_argument("--min_sample_size", type=int, default=32000,
                           help="skip utterances with fewer samples (official 32000 = 2 s)")
        group.add_argument("--crop_bucket_frames", type=int, default=0,
                           help="round every batch's crop length down so that the CNN gives a multiple "
                                "of this many frames (fixed shapes for compile: true, no attention "
                                "mask with an even value); 0 = off, the official crop (issue 17)")
        group.add_argument("--health_log_interval", type=int, default=100,
                           help="updates between two 'health:' log lines and collapse checks "
                                "(0 disables them)")
        group.add_argument("--collapse_target_ppl_ratio", type=float, default=0.1,
                           help="warn when target_ppl < this x codebook_size (codebook collapse)")
        group.add_argument("--collapse_min_loss", type=float_or_none, default=None,
                           help="warn when the loss falls below this (default 0.1 x ln codebook_size "
                                "for dinosr, disabled for data2vec)")
        add_trust_argument(group)
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        # --resume and --init_param load through checkpoint_io; saves are atomic and ordered
        run_main_worker(super().main_worker, args)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        crop_multiple, crop_remainder = 1, 0
        config = build_model_config(args.model_conf)
        bucket_frames = getattr(args, "crop_bucket_frames", 0)
        if bucket_frames:
            crop_multiple, crop_remainder = crop_bucket_samples(*config.frame_window_and_stride, bucket_frames)
        # Standardise whole utterances before cropping (fairseq's order); the model skips its own.
        return CropToShortestCollate(max_sample_size=args.max_sample_size,
                                     min_sample_size=args.min_sample_size, random_crop=train,
                                     crop_multiple=crop_multiple, crop_remainder=crop_remainder,
                                     normalize=config.normalize_waveform)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> SSLPretrainModel:
        config = build_model_config(args.model_conf)
        # config.yaml then records every field, so the architecture never depends on defaults.
        args.model_conf = config.to_dict()
        ssl_class = model_choices.get_class(args.model)
        is_codebook_model = args.model == "dinosr"
        monitor = TrainingHealthMonitor(
            interval=args.health_log_interval,
            codebook_size=config.codebook_size if is_codebook_model else None,
            collapse_target_ppl_ratio=args.collapse_target_ppl_ratio,
            collapse_min_loss=args.collapse_min_loss)
        # build_collate_fn standardises whole utterances before cropping when normalize_waveform.
        return SSLPretrainModel(ssl_class(config), health_monitor=monitor, accum_grad=args.accum_grad,
                                input_standardized=config.normalize_waveform)

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module
                         ) -> List[torch.optim.Optimizer]:
        optimizers = super().build_optimizers(args, model)
        optimizer = optimizers[0]
        # Runs only when optimizer.step() really runs: GradScaler skips it on inf/NaN gradients
        # and the Trainer skips it on a non-finite gradient norm.
        optimizer.register_step_post_hook(lambda _optimizer, _args, _kwargs: model.on_optimizer_step())
        if model.health_monitor is not None:
            model.health_monitor.attach_optimizer(optimizer)
        return optimizers

    @classmethod
    def build_iter_options(cls, args: argparse.Namespace, distributed_option: DistributedOption,
                           mode: str) -> IteratorOptions:
        options = super().build_iter_options(args, distributed_option, mode)
        if mode in ("train", "valid") and options.shape_files:
            rank = distributed_option.dist_rank or 0
            filtered = []
            for index, shape_file in enumerate(options.shape_files):
                output = (Path(args.output_dir) / "shape_filtered" /
                          f"{mode}_{index}_{Path(shape_file).name}")
                kept, skipped = write_filtered_shape_file(
                    shape_file, output, args.min_sample_size, args.max_sample_size)
                if rank == 0:
                    logging.info(f"[{mode}] {shape_file}: {kept} utterances, {skipped} shorter than "
                                 f"min_sample_size={args.min_sample_size} skipped")
                filtered.append(str(output))
            options.shape_files = filtered
        return options

    @classmethod
    def get_default_config(cls) -> Dict[str, Any]:
        config = super().get_default_config()
        config["model_conf"] = build_model_config(
            {k: v for k, v in config.get("model_conf", {}).items() if k != "config"}).to_dict()
        return config
