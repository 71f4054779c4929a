"""Atomic file writes: a result file is either complete under its final name or not there at all.

Every file the project writes for a later stage to read (checkpoints, data-dir tables, token
lists, lexicons, LMs, emissions, scores, result tables) goes through here. The content is written
to a hidden temporary file in the target's directory, ``.<name>.tmp-<pid>``, flushed and fsynced,
then renamed over the target with ``os.replace`` (atomic on POSIX) and the directory is fsynced.
A process killed mid-write leaves the previous file intact and, at worst, a temporary that
``remove_stale_temporaries`` deletes; an exception removes the temporary at once.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, os.PathLike]
TEMPORARY_MARKER = ".tmp-"


def temporary_path(path: PathLike) -> Path:
    """The hidden temporary that a write of ``path`` goes through (same directory, same file system)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMPORARY_MARKER}{os.getpid()}")


def fsync_directory(directory: PathLike) -> None:
    """Make a rename in ``directory`` durable (best effort: some file systems refuse)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _fsync_file(path: Path) -> None:
    if path.is_file():
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())


def commit_temporary(temporary: PathLike, path: PathLike) -> None:
    """Rename a complete ``temporary`` over ``path`` and make the rename durable."""
    os.replace(temporary, path)
    fsync_directory(Path(path).parent)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield the temporary path to write ``path`` through (by any writer: a subprocess, soundfile,
    numpy); on a clean exit it replaces ``path``, on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"{temporary}: the writer of {path} produced no file")
        _fsync_file(temporary)
        commit_temporary(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """``open(path, mode)`` whose content appears under ``path`` only once the block completes."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as temporary:
        with open(temporary, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def remove_stale_temporaries(directory: PathLike) -> int:
    """Delete leftovers of writes that were killed mid-way in ``directory``; returns how many."""
    removed = 0
    directory = Path(directory)
    if directory.is_dir():
        for leftover in directory.glob(f".*{TEMPORARY_MARKER}*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
                removed += 1
    return removed
