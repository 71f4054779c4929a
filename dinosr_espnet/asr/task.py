"""ESPnet's ``ASRTask`` as ``bin.asr_train`` runs it: safe checkpoints, self-contained fine-tuned models.

Differences from ``espnet2.tasks.asr.ASRTask`` (everything else, options included, is ESPnet's):

- ``--pretrained_model PATH``: the pre-training ``model.pth`` (``config.yaml`` beside it) whose
  student initialises ``encoder: dinosr``. A plain string option: unlike ``--encoder_conf
  pretrained_model=PATH``, whose value ESPnet parses as YAML (`` #`` truncates it, ``: `` makes a
  mapping, ``!!python/...`` tags construct objects), it reaches the encoder unchanged.
- The fine-tuned model is self-contained: the pre-trained weights are read when fine-tuning
  starts, and ``config.yaml`` records the pre-trained architecture as
  ``encoder_conf.pretrained_config`` with no path to load, so decoding never touches ``exp/pretrain_*``
  (``pretrained_from`` at the top level of ``config.yaml`` records the origin; nothing reads it).
- ``--trust_checkpoint``: checkpoints (``--pretrained_model``, ``--resume``, ``--init_param``) are
  loaded as tensors only unless it is true (``checkpoint_io``); a refused file ends the run with
  one error line.
- The trainer is ``CheckpointSafeTrainer``: atomic saves, ``checkpoint.pth`` written last, links
  only to files that exist.
- The CTC output layer starts as fairseq's: ``wav2vec_ctc`` projects the encoder output with its
  ``Linear`` helper (xavier-uniform weight, zero bias; dinosr_spec.md section 3), where ESPnet's
  ``CTC`` builds ``ctc_lo`` as a plain ``torch.nn.Linear`` (kaiming-uniform weight, random bias).
  Done for ``encoder: dinosr`` models unless ``--init`` asks for an ESPnet initialisation.
- ``--encoder_lr_scale S``: the encoder's parameters get ``S x optim_conf.lr`` (two optimizer parameter
  groups; every scheduler scales both alike), the rest (the CTC output layer) ``optim_conf.lr``. Not in
  fairseq, which has one lr; for fine-tuning a pre-trained encoder in a few hundred updates, where an lr
  high enough for a fresh output layer moves the pre-trained Transformer away from what it learned
  (egs/synth/dinosr1/local/tuning_notes.md). Default 1.0 = one group, as ESPnet.
"""
from __future__ import annotations

import argparse
import logging
import os

from typing import List

import torch
from espnet2.tasks.abs_task import optim_classes
from espnet2.tasks.asr import ASRTask

from dinosr_espnet.asr.pretrained import read_pretraining_config
from dinosr_espnet.checkpoint_io import CheckpointError
from dinosr_espnet.tasks.checkpoint import add_trust_argument, run_main_worker
from dinosr_espnet.tasks.trainer import CheckpointSafeTrainer

DINOSR_ENCODER = "dinosr"


def self_contained_encoder_conf(args: argparse.Namespace) -> str | None:
    """Move the pre-trained model path out of ``args`` (``--pretrained_model`` or a legacy
    ``encoder_conf.pretrained_model``) and record its architecture in ``encoder_conf``;
    returns the path (None when fine-tuning starts from scratch)."""
    encoder_conf = dict(args.encoder_conf or {})
    from_conf = encoder_conf.pop("pretrained_model", None)
    path = getattr(args, "pretrained_model", None)
    if from_conf is not None:
        if path is not None and str(from_conf) != str(path):
            raise CheckpointError(f"--pretrained_model {path} and encoder_conf pretrained_model {from_conf!r} differ")
        if not isinstance(from_conf, (str, os.PathLike)):
            raise CheckpointError(
                f"encoder_conf pretrained_model is not a path but {type(from_conf).__name__} {from_conf!r} "
                f"(--encoder_conf parses its value as YAML); give it with --pretrained_model PATH")
        path = str(from_conf)
    if path is None:
        args.encoder_conf = encoder_conf
        return None
    if args.encoder != DINOSR_ENCODER:
        raise CheckpointError(f"--pretrained_model {path}: only encoder: {DINOSR_ENCODER} reads it "
                              f"(this config has encoder: {args.encoder})")
    encoder_conf["pretrained_config"] = read_pretraining_config(path)
    args.encoder_conf = encoder_conf
    return str(path)


def initialize_ctc_output(linear: torch.nn.Linear) -> None:
    """fairseq ``Linear``: ``xavier_uniform_`` weight, zero bias."""
    torch.nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        torch.nn.init.zeros_(linear.bias)


class DinoSRASRTask(ASRTask):
    trainer = CheckpointSafeTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="dinosr-espnet fine-tuning")
        group.add_argument("--pretrained_model", type=str, default=None,
                           help="pre-training model.pth (config.yaml beside it) that initialises "
                                "encoder: dinosr; read when fine-tuning starts only, the run's "
                                "config.yaml records its architecture (default: none = scratch)")
        group.add_argument("--encoder_lr_scale", type=float, default=1.0,
                           help="learning rate of the encoder's parameters as a multiple of optim_conf "
                                "lr; the CTC output layer keeps optim_conf lr (default: 1.0, one lr)")
        add_trust_argument(group)

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        run_main_worker(super().main_worker, args)

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        scale = float(getattr(args, "encoder_lr_scale", 1.0))
        if scale == 1.0:
            return super().build_optimizers(args, model)
        if not scale > 0.0:
            raise ValueError(f"--encoder_lr_scale must be > 0, got {scale}")
        if args.sharded_ddp or args.exclude_weight_decay:
            raise ValueError("--encoder_lr_scale cannot be combined with --sharded_ddp or --exclude_weight_decay")
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"must be one of {list(optim_classes)}: {args.optim}")
        if "lr" not in args.optim_conf:
            raise ValueError("--encoder_lr_scale needs an explicit optim_conf lr")
        encoder_ids = {id(p) for p in model.encoder.parameters()}
        encoder = [p for p in model.parameters() if id(p) in encoder_ids]
        rest = [p for p in model.parameters() if id(p) not in encoder_ids]
        lr = float(args.optim_conf["lr"])
        logging.info(f"encoder lr = {scale} x {lr} ({len(encoder)} tensors), "
                     f"other parameters lr = {lr} ({len(rest)} tensors)")
        groups = [{"params": encoder, "lr": lr * scale}, {"params": rest}]
        return [optim_class(groups, **args.optim_conf)]

    @classmethod
    def build_model(cls, args: argparse.Namespace):
        model = cls._build_model_with_pretrained_encoder(args)
        ctc = getattr(model, "ctc", None)
        if args.encoder == DINOSR_ENCODER and getattr(args, "init", None) is None and ctc is not None:
            initialize_ctc_output(ctc.ctc_lo)
        return model

    @classmethod
    def _build_model_with_pretrained_encoder(cls, args: argparse.Namespace):
        path = self_contained_encoder_conf(args)
        vars(args).pop("pretrained_model", None)  # config.yaml must not name a file to reload
        if path is None:
            return super().build_model(args)
        args.pretrained_from = path
        recorded = args.encoder_conf
        args.encoder_conf = {**recorded, "pretrained_model": path}
        try:
            model = super().build_model(args)
        finally:
            args.encoder_conf = recorded  # what config.yaml gets: no path to reload
        logging.info(f"fine-tuning starts from {path}; config.yaml records its architecture, not its path")
        return model
