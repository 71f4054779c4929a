"""Atomic checkpoint writes: a save interrupted by a kill never replaces the last good file.

ESPnet's ``Trainer`` writes ``checkpoint.pth`` and ``<epoch>epoch.pth`` with plain ``torch.save``,
which truncates the old file first: a kill during the write leaves a corrupt checkpoint and
``--resume true`` then fails. ``atomic_torch_saves()`` scopes a replacement of ``torch.save`` that
writes to a temporary file in the same directory, flushes and fsyncs it, and renames it over the
target with ``os.replace`` (atomic on POSIX), then fsyncs the directory.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import torch

_ORIGINAL_SAVE: Callable = torch.save
TEMPORARY_MARKER = ".tmp-"


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_save(obj: Any, path: Union[str, os.PathLike], *args, **kwargs) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}{TEMPORARY_MARKER}{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            _ORIGINAL_SAVE(obj, handle, *args, **kwargs)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _save_dispatch(obj: Any, f, *args, **kwargs) -> None:
    if isinstance(f, (str, os.PathLike)):
        atomic_save(obj, f, *args, **kwargs)
    else:  # file objects and buffers: nothing to replace atomically
        _ORIGINAL_SAVE(obj, f, *args, **kwargs)


@contextlib.contextmanager
def atomic_torch_saves() -> Iterator[None]:
    """Within the block every ``torch.save`` to a path is atomic (see module docstring)."""
    previous = torch.save
    torch.save = _save_dispatch
    try:
        yield
    finally:
        torch.save = previous


def remove_stale_temporaries(directory: Union[str, os.PathLike]) -> int:
    """Delete leftovers of saves that were killed mid-write; returns how many were removed."""
    removed = 0
    directory = Path(directory)
    if directory.is_dir():
        for leftover in directory.glob(f".*{TEMPORARY_MARKER}*"):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed
