"""Checkpoint files: one safe loader, one atomic writer, strict state-dict matching.

Every checkpoint the project (or ESPnet, on the project's behalf) reads comes through
``load_checkpoint``: ``torch.load(weights_only=True)`` with an allow-list of the few harmless
non-tensor types real checkpoints hold (``safe_globals()``: the omegaconf ``cfg`` of the official
fairseq checkpoint, the numpy scalars and ``timedelta`` of ESPnet's ``checkpoint.pth``). Anything
else is refused with a ``CheckpointError`` that names the file and ``--trust_checkpoint``, the
only way (per command) to unpickle arbitrary objects, which can run code from the file.

Every checkpoint the project writes goes through ``save_checkpoint`` (atomic, ``atomic_files``).
``load_state_dict_strictly`` loads weights into a module and names every missing, unexpected or
mis-shaped key, so an unrelated state dict is an error instead of a model with random weights.

The model directory contract (docs/INTERFACES.md section 2): ``<dir>/model.pth`` (state dict) and
``<dir>/config.yaml`` (``model``, ``model_conf``) beside it: ``write_model_dir`` / ``read_model_config``.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import os
import pickle
import re
import typing
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Union

import yaml

from dinosr_espnet.atomic_files import atomic_open, atomic_write_text

PathLike = Union[str, os.PathLike]
TRUST_FLAG = "--trust_checkpoint"
TRUST_HELP = ("unpickle checkpoints in full, not only tensors and the allow-listed types; unpickling "
              "can run arbitrary code from the file: only for files you trust")


def _boolean(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_trust_argument(parser) -> None:
    """``--trust_checkpoint`` (alone, or ``true``/``false`` ESPnet-style) on a command's parser."""
    parser.add_argument(TRUST_FLAG, nargs="?", const=True, default=False, type=_boolean, help=TRUST_HELP)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file (a user error, no traceback)."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint holding objects outside the allow-list (their unpickling could run code)."""


def _numpy_globals() -> List[Any]:
    import numpy

    core = getattr(numpy, "_core", None) or numpy.core
    found: List[Any] = [core.multiarray.scalar, numpy.dtype]
    dtypes = getattr(numpy, "dtypes", None)
    for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType"):
        if dtypes is not None and hasattr(dtypes, name):
            found.append(getattr(dtypes, name))
    return found


def _omegaconf_globals() -> List[Any]:
    """The classes of an omegaconf ``DictConfig`` (fairseq's ``cfg``); empty without omegaconf."""
    try:
        from omegaconf import base, dictconfig, listconfig, nodes
    except ImportError:
        return []
    node_types = [getattr(nodes, name) for name in (
        "AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode")
        if hasattr(nodes, name)]
    return [dictconfig.DictConfig, listconfig.ListConfig, base.ContainerMetadata, base.Metadata, *node_types]


def safe_globals() -> List[Any]:
    """Types a checkpoint may hold besides tensors and plain containers (none runs code when rebuilt)."""
    # builtins and typing.Any appear as *values* in omegaconf metadata (object_type=dict, key_type=Any)
    plain = [dict, list, int, float, str, bool, bytes, typing.Any, collections.defaultdict,
             collections.OrderedDict, datetime.timedelta]
    return plain + _numpy_globals() + _omegaconf_globals()


def _qualified_name(item: Any) -> str:
    return f"{getattr(item, '__module__', '')}.{getattr(item, '__qualname__', getattr(item, '_name', ''))}"


def _refused_detail(path: Path, error: Exception) -> str:
    """The globals of ``path`` outside the allow-list (read without unpickling), else torch's reason."""
    import torch

    try:
        allowed = {_qualified_name(item) for item in safe_globals()} | {"typing.Any"}
        unsafe = [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in allowed]
    except Exception:  # noqa: BLE001  (only used to word the message)
        unsafe = []
    if unsafe:
        return "types " + ", ".join(unsafe[:10])
    match = re.search(r"WeightsUnpickler error: ([^\n]*)", str(error))
    return (match.group(1) if match else str(error).strip().splitlines()[0])[:300]


def _refusal(path: Path, detail: str) -> UntrustedCheckpointError:
    return UntrustedCheckpointError(
        f"{path}: refused to load: it holds Python objects outside the safe allow-list ({detail}); "
        f"unpickling them can run code from the file. If you trust {path}, pass {TRUST_FLAG} "
        f"to load it in full.")


_trust_scope: List[bool] = [False]


@contextlib.contextmanager
def checkpoint_trust(trust: bool) -> Iterator[None]:
    """Within the block ``load_checkpoint(path)`` (``trust`` not given) uses ``trust``: the value of
    a command's ``--trust_checkpoint``, for loaders that ESPnet or an encoder calls."""
    _trust_scope.append(bool(trust))
    try:
        yield
    finally:
        _trust_scope.pop()


def load_checkpoint(path: PathLike, trust: Optional[bool] = None, map_location: Any = "cpu") -> Any:
    """The content of a ``torch.save`` file, loaded without running code unless ``trust``
    (default: the enclosing ``checkpoint_trust`` scope, else False).

    Raises ``MissingCheckpointError`` (missing; also a ``FileNotFoundError``), ``UntrustedCheckpointError`` (objects outside the
    allow-list, ``trust`` false) or ``CheckpointError`` (truncated or not a checkpoint).
    """
    path = Path(path)
    trust = _trust_scope[-1] if trust is None else trust
    if not path.is_file():
        raise MissingCheckpointError(f"checkpoint not found: {path}")
    import torch  # here: this module is imported by command-line parsers that must start fast

    # torch.serialization.load, not torch.load: tasks/checkpoint.py scopes a replacement of the latter
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.serialization.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust:
            raise _refusal(path, _refused_detail(path, error)) from None
    except (EOFError, zipfile.BadZipFile, RuntimeError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or another format?): "
                              f"{type(error).__name__}: {str(error).strip()[:300]}") from None
    return torch.serialization.load(path, map_location=map_location, weights_only=False)



def save_checkpoint(content: Any, path: PathLike) -> Path:
    """``torch.save(content, path)`` atomically: ``path`` is the old file or the complete new one."""
    import torch

    with atomic_open(path, "wb") as handle:
        torch.serialization.save(content, handle)
    return Path(path)



def _listed(items: List[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def state_mismatches(model_state: Mapping[str, Any], checkpoint_state: Mapping[str, Any]) -> List[str]:
    """Human-readable problems between a module's and a checkpoint's state dicts (empty: they match)."""
    missing = sorted(set(model_state) - set(checkpoint_state))
    unexpected = sorted(set(checkpoint_state) - set(model_state))
    shapes = [f"{key}: checkpoint {tuple(checkpoint_state[key].shape)} vs model {tuple(model_state[key].shape)}"
              for key in sorted(set(model_state) & set(checkpoint_state))
              if hasattr(checkpoint_state[key], "shape")
              and tuple(checkpoint_state[key].shape) != tuple(model_state[key].shape)]
    problems = []
    if shapes:
        problems.append(f"shape mismatches: {_listed(shapes)}")
    if missing:
        problems.append(f"keys the model needs but the checkpoint lacks: {_listed(missing)}")
    if unexpected:
        problems.append(f"checkpoint keys the model does not have: {_listed(unexpected)}")
    return problems


def load_state_dict_strictly(module: Any, state: Any, path: PathLike, what: str = "") -> None:
    """``module.load_state_dict(state, strict=True)``; a ``CheckpointError`` naming every bad key."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    problems = state_mismatches(module.state_dict(), state)
    if problems:
        raise CheckpointError(f"{path} does not match {what or type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


# --- the model directory contract: <dir>/model.pth + <dir>/config.yaml ---------------------------

def read_model_config(config_path: PathLike) -> Dict[str, Any]:
    """The whole ``config.yaml`` of a model directory, read with ``yaml.safe_load`` (a mapping)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no such file (the config.yaml beside model.pth gives the "
                                f"architecture: model, model_conf)")
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = yaml.safe_load(stream) or {}
    except yaml.YAMLError as error:
        raise CheckpointError(f"{config_path}: not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a mapping, got {type(config).__name__}")
    model_conf = config.get("model_conf") or {}
    if not isinstance(model_conf, dict):
        raise CheckpointError(f"{config_path}: model_conf must be a mapping, got {type(model_conf).__name__}")
    return config


def write_model_dir(state: Mapping[str, Any], model_path: PathLike,
                    document: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``model_path`` (state dict) and, when given, ``config.yaml`` beside it, both atomically.

    The weights go first: a ``config.yaml`` is only ever next to the weights it describes.
    """
    model_path = Path(model_path)
    save_checkpoint(dict(state), model_path)
    if document is not None:
        atomic_write_text(model_path.with_name("config.yaml"), yaml.safe_dump(dict(document), sort_keys=False))
    return model_path


def prefixed(state: Mapping[str, Any], prefix: str) -> Dict[str, Any]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def key_prefixes(keys: Iterable[str], depth: int = 2, limit: int = 10) -> List[str]:
    """A short list of the distinct leading components of ``keys`` (for error messages)."""
    return sorted({".".join(str(key).split(".")[:depth]) for key in keys})[:limit]
