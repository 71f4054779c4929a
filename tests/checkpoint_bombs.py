"""Checkpoints whose unpickling runs code: it creates a marker file (and yields a zero tensor).

Built independently of the code under test: ``__reduce__`` makes pickle store a call of the builtin
``eval``, so any loader that unpickles in full runs it, and one that only rebuilds tensors and
allow-listed types refuses it. The marker says whether the code ran.
"""
from pathlib import Path
from typing import Dict, Optional

import torch


class CodeRunningTensor:
    """Pickles as ``eval("<touch marker>, torch.zeros(shape)")``: a tensor that runs code when loaded."""

    def __init__(self, marker: Path, shape=(1,)):
        self.marker = str(marker)
        self.shape = tuple(int(size) for size in shape)

    def __reduce__(self):
        source = (f"(__import__('pathlib').Path({self.marker!r}).touch(), "
                  f"__import__('torch').zeros({self.shape!r}))[1]")
        return (eval, (source,))


def plant(state: Dict[str, torch.Tensor], marker: Path, key: Optional[str] = None) -> Dict[str, object]:
    """A copy of ``state`` whose ``key`` (default: the last) is a code-running tensor of its shape."""
    key = key or list(state)[-1]
    planted = dict(state)
    planted[key] = CodeRunningTensor(marker, state[key].shape)
    return planted


def write_bomb(path: Path, content, marker: Path) -> Path:
    """``torch.save`` a checkpoint with a code-running entry; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    assert not Path(marker).exists()
    return path


def no_traceback(process) -> bool:
    return "Traceback" not in (process.stdout or "") + (process.stderr or "")
