"""Checkpoint writes are atomic: a process killed mid-write leaves the last good file in place."""
import subprocess
import sys
import textwrap

import torch

from dinosr_espnet.tasks.checkpoint import atomic_save, atomic_torch_saves, remove_stale_temporaries

# Saves a state whose pickling SIGKILLs the process half way through the write.
_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from dinosr_espnet.tasks.checkpoint import atomic_torch_saves

    class KillWhilePickling:
        def __reduce__(self):
            os.kill(os.getpid(), signal.SIGKILL)

    state = {"weights": torch.full((100000,), 2.0), "bomb": KillWhilePickling()}
    if sys.argv[2] == "atomic":
        with atomic_torch_saves():
            torch.save(state, sys.argv[1])
    else:
        torch.save(state, sys.argv[1])
    """
)


def _write_good_checkpoint(path):
    torch.save({"weights": torch.ones(10)}, path)


def _kill_during_save(path, mode):
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path), mode], timeout=120)
    assert proc.returncode == -9, "the writer was expected to die of SIGKILL"


def test_killed_atomic_save_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pth"
    _write_good_checkpoint(path)
    _kill_during_save(path, "atomic")
    assert torch.equal(torch.load(path)["weights"], torch.ones(10))
    assert remove_stale_temporaries(tmp_path) == 1  # the half-written temporary
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


def test_killed_plain_torch_save_destroys_checkpoint(tmp_path):
    """Why the atomic write is needed: the same kill corrupts a plain torch.save target."""
    path = tmp_path / "checkpoint.pth"
    _write_good_checkpoint(path)
    _kill_during_save(path, "plain")
    try:
        intact = torch.equal(torch.load(path)["weights"], torch.ones(10))
    except Exception:
        intact = False
    assert not intact


def test_atomic_save_replaces_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.pth"
    _write_good_checkpoint(path)
    atomic_save({"weights": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path)["weights"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_torch_save_is_restored_after_the_scope(tmp_path):
    original = torch.save
    with atomic_torch_saves():
        assert torch.save is not original
        torch.save({"x": 1}, tmp_path / "a.pth")
    assert torch.save is original and torch.load(tmp_path / "a.pth") == {"x": 1}
