"""ESPnet's Trainer with atomic checkpoint writes, a choice of AMP dtype and a final model.pth.

- Every ``torch.save`` the Trainer does (``checkpoint.pth``, ``<epoch>epoch.pth``, averaged
  models) is atomic (``checkpoint.atomic_torch_saves``): a kill mid-write never replaces the last
  good file.
- ``--amp_dtype float16|bfloat16``: with ``--use_amp true`` ESPnet picks bf16 by itself whenever
  the GPU supports it; the official recipe trains in fp16 with dynamic loss scaling and bf16 was
  reported to collapse (spec 6.4, issue #2), so fp16 is the default here.
- At the end (rank 0) ``<output_dir>/model.pth`` = the final weights (``ssl.*`` keys), written
  atomically: with ``config.yaml`` beside it, the input of fine-tuning (INTERFACES 2).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Iterator

import torch
from espnet2.train import trainer as espnet_trainer
from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass

from dinosr_espnet.tasks.checkpoint import atomic_save, atomic_torch_saves, remove_stale_temporaries

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclasses.dataclass
class DinoSRTrainerOptions(TrainerOptions):
    amp_dtype: str = "float16"


@contextlib.contextmanager
def _autocast_dtype(name: str) -> Iterator[None]:
    """Set the dtype ESPnet's Trainer passes to autocast (a module-level dict) for the block."""
    previous = dict(espnet_trainer.autocast_args)
    espnet_trainer.autocast_args.clear()
    espnet_trainer.autocast_args["dtype"] = AMP_DTYPES[name]
    try:
        yield
    finally:
        espnet_trainer.autocast_args.clear()
        espnet_trainer.autocast_args.update(previous)


class DinoSRTrainer(Trainer):
    @classmethod
    def build_options(cls, args: argparse.Namespace) -> DinoSRTrainerOptions:
        return build_dataclass(DinoSRTrainerOptions, args)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("DinoSR trainer")
        group.add_argument("--amp_dtype", choices=sorted(AMP_DTYPES), default="float16",
                           help="autocast dtype of --use_amp true (official: float16 with dynamic "
                                "loss scaling; bfloat16 was reported to collapse DinoSR)")

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        output_dir = Path(trainer_options.output_dir)
        is_main = not distributed_option.distributed or distributed_option.dist_rank == 0
        if is_main and remove_stale_temporaries(output_dir):
            logging.warning(f"removed leftovers of interrupted checkpoint writes in {output_dir}")
        with atomic_torch_saves(), _autocast_dtype(trainer_options.amp_dtype):
            super().run(model=model, optimizers=optimizers, schedulers=schedulers,
                        train_iter_factory=train_iter_factory, valid_iter_factory=valid_iter_factory,
                        plot_attention_iter_factory=plot_attention_iter_factory,
                        trainer_options=trainer_options, distributed_option=distributed_option)
        if is_main:
            atomic_save(model.state_dict(), output_dir / "model.pth")
            logging.info(f"wrote the final weights to {output_dir / 'model.pth'}")
