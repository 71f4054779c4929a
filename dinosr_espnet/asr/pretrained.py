"""Reading the student out of a pre-training checkpoint (``model.pth`` + ``config.yaml`` beside it).

A pre-training run (``dinosr_espnet.bin.dinosr_train``) and ``bin.import_fairseq`` both leave
``<dir>/model.pth``, a state dict whose SSL model sits under ``ssl.`` (so the student is
``ssl.student.*``), and ``<dir>/config.yaml`` whose ``model_conf`` holds the ``DinoSRConfig`` fields
(docs/INTERFACES.md section 2). Fine-tuning keeps the student only: teacher, codebooks and
prediction heads are dropped. Files are read through ``checkpoint_io`` (tensors only unless the
command was given ``--trust_checkpoint``; ``config.yaml`` with ``yaml.safe_load``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Union

import torch

from dinosr_espnet.checkpoint_io import (CheckpointError, key_prefixes, load_checkpoint, prefixed,
                                         read_model_config, state_mismatches)

STUDENT_PREFIX = "ssl.student."

PathLike = Union[str, Path]


def read_pretraining_config(checkpoint_path: PathLike) -> Dict[str, Any]:
    """``model_conf`` of the ``config.yaml`` next to ``checkpoint_path`` (the model architecture)."""
    config_path = Path(checkpoint_path).with_name("config.yaml")
    if not config_path.is_file():
        raise FileNotFoundError(
            f"pretrained_model {checkpoint_path}: no config.yaml beside it ({config_path}); it gives the "
            f"architecture (model_conf) of the pre-trained model")
    return dict(read_model_config(config_path).get("model_conf") or {})


def read_student_state(checkpoint_path: PathLike) -> Dict[str, torch.Tensor]:
    """The student's tensors (``ssl.student.*`` with the prefix removed) of a pre-training state dict."""
    checkpoint_path = Path(checkpoint_path)
    state = load_checkpoint(checkpoint_path)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{checkpoint_path}: expected a state dict, got {type(state).__name__}")
    student = prefixed(state, STUDENT_PREFIX)
    if not student:
        raise CheckpointError(f"{checkpoint_path}: no '{STUDENT_PREFIX}*' keys, so this is not a DinoSR/data2vec "
                              f"pre-training checkpoint (key prefixes found: {key_prefixes(state)})")
    return student


def load_student_weights(student: torch.nn.Module, checkpoint_path: PathLike) -> None:
    """Copy the checkpoint's student into ``student``; CheckpointError naming every mismatching key/shape."""
    checkpoint_state = read_student_state(checkpoint_path)
    problems = state_mismatches(student.state_dict(), checkpoint_state)
    if problems:
        raise CheckpointError(
            f"pretrained_model {checkpoint_path} does not match the encoder's architecture "
            f"(keys are relative to '{STUDENT_PREFIX}'); {'; '.join(problems)}. The architecture comes from "
            f"config.yaml beside the checkpoint, overridden by encoder_conf model_conf; remove conflicting "
            f"overrides.")
    student.load_state_dict(checkpoint_state, strict=True)
