"""ESPnet's Trainer and AbsTask read and write checkpoints through ``checkpoint_io``, in a scope.

ESPnet calls ``torch.save`` / ``torch.load`` itself (``checkpoint.pth``, ``<epoch>epoch.pth``,
averaged models, ``--resume``, ``--init_param``, n-best averaging). Within
``espnet_checkpoint_io(trust)``:

- every ``torch.load`` is ``checkpoint_io.load_checkpoint``: tensors and allow-listed types only,
  unless the command was given ``--trust_checkpoint``; ``--init_param`` errors name the file;
- every ``torch.save`` to a path is atomic (``checkpoint_io.save_checkpoint``): a kill mid-write
  never replaces the last good file (a plain ``torch.save`` truncates it first);
- ``checkpoint.pth`` is written at once (to its temporary) but renamed into place only by
  ``commit_pending_checkpoint()``, which the trainer calls once the epoch's ``<N>epoch.pth`` and
  the ``latest`` / ``*.best.pth`` links exist (ESPnet saves ``checkpoint.pth`` first): a run
  killed in between resumes at that epoch again instead of skipping the model file it lacks.

``remove_dangling_links`` removes links left pointing at missing files by older runs.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Union

import torch

from dinosr_espnet.atomic_files import (commit_temporary, remove_stale_temporaries,  # noqa: F401
                                        temporary_path)
from dinosr_espnet.checkpoint_io import (CheckpointError, add_trust_argument,  # noqa: F401
                                         checkpoint_trust, load_checkpoint, safe_globals,
                                         save_checkpoint)

RESUME_CHECKPOINT = "checkpoint.pth"
# the functions torch.load / torch.save name; the scopes below replace those two names only
_ORIGINAL_LOAD = torch.serialization.load
_ORIGINAL_SAVE = torch.serialization.save
_pending: Dict[Path, Path] = {}  # checkpoint.pth -> its complete temporary, awaiting the rename
_defer_resume_checkpoint: List[bool] = [False]

atomic_save = save_checkpoint  # the name the pre-training trainer and its tests use


def _save_dispatch(obj: Any, f, *args, **kwargs) -> None:
    if not isinstance(f, (str, os.PathLike)):  # file objects and buffers: nothing to replace
        _ORIGINAL_SAVE(obj, f, *args, **kwargs)
        return
    path = Path(f)
    if path.name == RESUME_CHECKPOINT and _defer_resume_checkpoint[-1]:
        temporary = temporary_path(path)
        with open(temporary, "wb") as handle:
            _ORIGINAL_SAVE(obj, handle, *args, **kwargs)
            handle.flush()
            os.fsync(handle.fileno())
        previous = _pending.pop(path, None)
        if previous is not None and previous != temporary:
            previous.unlink(missing_ok=True)
        _pending[path] = temporary
        return
    save_checkpoint(obj, path)


def commit_pending_checkpoint() -> None:
    """Rename the written ``checkpoint.pth`` into place (the epoch's other files are complete)."""
    while _pending:
        path, temporary = _pending.popitem()
        commit_temporary(temporary, path)


def _discard_pending_checkpoint() -> None:
    while _pending:
        _, temporary = _pending.popitem()
        temporary.unlink(missing_ok=True)


def _load_dispatch(f, map_location=None, *args, **kwargs) -> Any:
    if isinstance(f, (str, os.PathLike)):
        return load_checkpoint(f, map_location=map_location)
    kwargs.pop("weights_only", None)  # a buffer: the same policy, without a file name
    with torch.serialization.safe_globals(safe_globals()):
        return _ORIGINAL_LOAD(f, map_location=map_location, weights_only=True)


@contextlib.contextmanager
def atomic_torch_saves(defer_resume_checkpoint: bool = False) -> Iterator[None]:
    """Within the block every ``torch.save`` to a path is atomic; with ``defer_resume_checkpoint``
    ``checkpoint.pth`` waits for ``commit_pending_checkpoint()`` (discarded if never committed)."""
    previous = torch.save
    torch.save = _save_dispatch
    _defer_resume_checkpoint.append(defer_resume_checkpoint)
    try:
        yield
    finally:
        _defer_resume_checkpoint.pop()
        torch.save = previous
        if not _defer_resume_checkpoint[-1]:
            _discard_pending_checkpoint()


def _checked_init_param(original):
    def load_pretrained_model(init_param: str, model: torch.nn.Module, *args, **kwargs):
        try:
            return original(init_param, model, *args, **kwargs)
        except (RuntimeError, KeyError, AttributeError) as error:  # load_state_dict / key lookups
            raise CheckpointError(f"--init_param {init_param}: does not fit the model: "
                                  f"{str(error).strip()[:2000]}") from None
    return load_pretrained_model


@contextlib.contextmanager
def safe_torch_loads(trust: bool) -> Iterator[None]:
    """Within the block every ``torch.load`` goes through ``load_checkpoint`` with ``trust``."""
    previous = torch.load
    torch.load = _load_dispatch
    patched = []
    try:
        from espnet2.tasks import abs_task  # noqa: WPS433 (ESPnet is only needed by its tasks)

        patched.append((abs_task, "load_pretrained_model", abs_task.load_pretrained_model))
        abs_task.load_pretrained_model = _checked_init_param(abs_task.load_pretrained_model)
    except ImportError:
        pass
    try:
        with checkpoint_trust(trust):
            yield
    finally:
        torch.load = previous
        for owner, name, original in patched:
            setattr(owner, name, original)


@contextlib.contextmanager
def espnet_checkpoint_io(trust: bool) -> Iterator[None]:
    """Safe loads (``--trust_checkpoint`` = ``trust``) and atomic, ordered saves for an ESPnet run."""
    with safe_torch_loads(trust), atomic_torch_saves(defer_resume_checkpoint=True):
        yield


def run_main_worker(main_worker: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """``AbsTask.main_worker(args)`` inside ``espnet_checkpoint_io``; a checkpoint the policy refuses
    (or that does not fit) ends the process with one error line, exit status 1, no traceback.

    ``trust_checkpoint`` is taken out of ``args``: it is a decision for this command, not a setting
    that a later run reading this ``config.yaml`` should inherit.
    """
    trust = bool(vars(args).pop("trust_checkpoint", False))
    try:
        with espnet_checkpoint_io(trust):
            main_worker(args)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def remove_dangling_links(directory: Union[str, os.PathLike]) -> List[str]:
    """Remove the symlinks in ``directory`` whose target is missing; returns their names."""
    removed = []
    directory = Path(directory)
    if directory.is_dir():
        for link in sorted(directory.iterdir()):
            if link.is_symlink() and not link.exists():
                link.unlink()
                removed.append(link.name)
    if removed:
        logging.warning(f"{directory}: removed links to missing files: {', '.join(removed)}")
    return removed
