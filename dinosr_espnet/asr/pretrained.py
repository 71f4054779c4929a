"""Reading the student out of a pre-training checkpoint (``model.pth`` + ``config.yaml`` beside it).

A pre-training run (``dinosr_espnet.bin.dinosr_train``) and ``bin.import_fairseq`` both leave
``<dir>/model.pth``, a state dict whose SSL model sits under ``ssl.`` (so the student is
``ssl.student.*``), and ``<dir>/config.yaml`` whose ``model_conf`` holds the ``DinoSRConfig`` fields
(docs/INTERFACES.md section 2). Fine-tuning keeps the student only: teacher, codebooks and
prediction heads are dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

import torch
import yaml

STUDENT_PREFIX = "ssl.student."

PathLike = Union[str, Path]


def read_pretraining_config(checkpoint_path: PathLike) -> Dict[str, Any]:
    """``model_conf`` of the ``config.yaml`` next to ``checkpoint_path`` (the model architecture)."""
    config_path = Path(checkpoint_path).with_name("config.yaml")
    if not config_path.is_file():
        raise FileNotFoundError(
            f"pretrained_model {checkpoint_path}: no config.yaml beside it ({config_path}); it gives the "
            f"architecture (model_conf) of the pre-trained model")
    with open(config_path, encoding="utf-8") as stream:
        config = yaml.safe_load(stream) or {}
    model_conf = config.get("model_conf") or {}
    if not isinstance(model_conf, dict):
        raise ValueError(f"{config_path}: model_conf must be a mapping, got {type(model_conf).__name__}")
    return dict(model_conf)


def read_student_state(checkpoint_path: PathLike) -> Dict[str, torch.Tensor]:
    """The student's tensors (``ssl.student.*`` with the prefix removed) of a pre-training state dict."""
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"pretrained_model not found: {checkpoint_path}")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{checkpoint_path}: expected a state dict, got {type(state).__name__}")
    student = {key[len(STUDENT_PREFIX):]: value for key, value in state.items()
               if key.startswith(STUDENT_PREFIX)}
    if not student:
        prefixes = sorted({".".join(key.split(".")[:2]) for key in state})[:10]
        raise ValueError(f"{checkpoint_path}: no '{STUDENT_PREFIX}*' keys, so this is not a DinoSR/data2vec "
                         f"pre-training checkpoint (key prefixes found: {prefixes})")
    return student


def _listed(items: List[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def architecture_mismatches(model_state: Mapping[str, torch.Tensor],
                            checkpoint_state: Mapping[str, torch.Tensor]) -> Tuple[List[str], List[str], List[str]]:
    """(missing from checkpoint, unexpected in checkpoint, ``key: checkpoint shape vs model shape``)."""
    missing = sorted(set(model_state) - set(checkpoint_state))
    unexpected = sorted(set(checkpoint_state) - set(model_state))
    shapes = [f"{key}: checkpoint {tuple(checkpoint_state[key].shape)} vs model {tuple(model_state[key].shape)}"
              for key in sorted(set(model_state) & set(checkpoint_state))
              if tuple(checkpoint_state[key].shape) != tuple(model_state[key].shape)]
    return missing, unexpected, shapes


def load_student_weights(student: torch.nn.Module, checkpoint_path: PathLike) -> None:
    """Copy the checkpoint's student into ``student``; ValueError naming every mismatching key/shape."""
    checkpoint_state = read_student_state(checkpoint_path)
    model_state = student.state_dict()
    missing, unexpected, shapes = architecture_mismatches(model_state, checkpoint_state)
    if missing or unexpected or shapes:
        problems = []
        if shapes:
            problems.append(f"shape mismatches: {_listed(shapes)}")
        if missing:
            problems.append(f"keys the model needs but the checkpoint lacks: {_listed(missing)}")
        if unexpected:
            problems.append(f"checkpoint keys the model does not have: {_listed(unexpected)}")
        raise ValueError(
            f"pretrained_model {checkpoint_path} does not match the encoder's architecture "
            f"(keys are relative to '{STUDENT_PREFIX}'); {'; '.join(problems)}. The architecture comes from "
            f"config.yaml beside the checkpoint, overridden by encoder_conf model_conf; remove conflicting "
            f"overrides.")
    student.load_state_dict(checkpoint_state, strict=True)
