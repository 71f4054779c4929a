"""An output directory that appears complete or not at all: written in a temporary sibling, renamed at the end."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


class OutputDirError(ValueError):
    """OUT_DIR exists and is not empty (and overwriting was not asked for)."""


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """OutputDirError when ``out_dir`` is a non-empty directory (or a file) and ``overwrite`` is False."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"output dir {out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputDirError(f"output dir {out_dir}: exists and is not empty (pass --overwrite to replace it)")


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``out_dir``; on success it replaces ``out_dir``, on error it is removed.

    A previous ``out_dir`` (allowed by ``overwrite``) is moved aside first and deleted only after the
    rename, so an interruption leaves either the old or the new directory, never a mix.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".partial"))
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    os.chmod(temporary, 0o755)  # mkdtemp makes it 0700
    previous = None
    if out_dir.exists():
        previous = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".old"))
        os.rmdir(previous)
        os.replace(out_dir, previous)
    os.replace(temporary, out_dir)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
