"""ESPnet's Trainer with atomic, ordered checkpoint writes, a choice of AMP dtype and a final model.pth.

- ``CheckpointSafeTrainer`` (used by pre-training and by fine-tuning): every ``torch.save`` of the
  Trainer (``checkpoint.pth``, ``<epoch>epoch.pth``, averaged models) is atomic, and
  ``checkpoint.pth`` is renamed into place last, once the epoch's model file and links exist
  (``tasks/checkpoint.py``); leftovers of killed writes and links to missing files are removed
  when a run starts. Its callers open ``espnet_checkpoint_io`` around the ESPnet task
  (``AbsTask.main_worker``), so ``--resume`` and ``--init_param`` load safely too.
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

from dinosr_espnet.checkpoint_io import CheckpointError, save_checkpoint
from dinosr_espnet.tasks.checkpoint import (atomic_torch_saves, commit_pending_checkpoint,
                                            remove_dangling_links, remove_stale_temporaries)

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


class CheckpointSafeTrainer(Trainer):
    """ESPnet's Trainer whose checkpoints are atomic and whose ``checkpoint.pth`` is written last."""

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        output_dir = Path(trainer_options.output_dir)
        is_main = not distributed_option.distributed or distributed_option.dist_rank == 0
        if is_main:
            if remove_stale_temporaries(output_dir):
                logging.warning(f"removed leftovers of interrupted checkpoint writes in {output_dir}")
            remove_dangling_links(output_dir)
        # a no-op inside espnet_checkpoint_io (already atomic and deferred); keeps run() safe alone
        with atomic_torch_saves(defer_resume_checkpoint=True):
            super().run(model=model, optimizers=optimizers, schedulers=schedulers,
                        train_iter_factory=train_iter_factory, valid_iter_factory=valid_iter_factory,
                        plot_attention_iter_factory=plot_attention_iter_factory,
                        trainer_options=trainer_options, distributed_option=distributed_option)
            commit_pending_checkpoint()

    @staticmethod
    def resume(checkpoint, *args, **kwargs) -> None:
        """ESPnet's resume (loading through checkpoint_io in the task's scope); a checkpoint.pth of
        another model or run is one error naming it, not a traceback."""
        try:
            Trainer.resume(checkpoint, *args, **kwargs)
        except (RuntimeError, KeyError, ValueError) as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(f"--resume: {checkpoint} does not fit this run (another model or "
                                  f"options?): {str(error).strip()[:2000]}") from None

    @classmethod
    def train_one_epoch(cls, *args, **kwargs) -> bool:
        # ESPnet has finished the previous epoch's model file, links and clean-up by now
        commit_pending_checkpoint()
        return super().train_one_epoch(*args, **kwargs)


class DinoSRTrainer(CheckpointSafeTrainer):
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
        with _autocast_dtype(trainer_options.amp_dtype):
            super().run(model=model, optimizers=optimizers, schedulers=schedulers,
                        train_iter_factory=train_iter_factory, valid_iter_factory=valid_iter_factory,
                        plot_attention_iter_factory=plot_attention_iter_factory,
                        trainer_options=trainer_options, distributed_option=distributed_option)
        if is_main:
            save_checkpoint(model.state_dict(), output_dir / "model.pth")
            logging.info(f"wrote the final weights to {output_dir / 'model.pth'}")
