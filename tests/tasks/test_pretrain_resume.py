"""Exact resume: N updates straight == N/2 updates, kill mid-checkpoint-write, resume, N/2 updates."""
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO_ROOT
from pretrain_fixtures import run_train, train_args, write_corpus

# Short epochs of 3 updates; checkpoints after each epoch.
_SHORT = ("--batch_bins", "64000", "--num_iters_per_epoch", "3", "--max_epoch", "2",
          "--scheduler_conf", "max_update=6", "--health_log_interval", "1")

# Runs dinosr_train, but SIGKILLs the process while it writes the epoch-2 checkpoint.pth.
_KILLED_IN_EPOCH_2_CHECKPOINT = textwrap.dedent(
    """
    import os, signal, sys
    import dinosr_espnet
    from espnet2.train.reporter import Reporter

    class KillWhilePickling:
        def __reduce__(self):
            os.kill(os.getpid(), signal.SIGKILL)

    original_state_dict = Reporter.state_dict

    def state_dict(self):
        state = original_state_dict(self)
        return dict(state, bomb=KillWhilePickling()) if self.get_epoch() == 2 else state

    Reporter.state_dict = state_dict
    from dinosr_espnet.bin.dinosr_train import main
    main(sys.argv[1:])
    """
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), 12, seed=1)


def test_resume_after_kill_is_bit_exact(corpus, tmp_path):
    straight = tmp_path / "straight"
    run_train(corpus, straight, *_SHORT)

    interrupted = tmp_path / "interrupted"
    proc = subprocess.run([sys.executable, "-c", _KILLED_IN_EPOCH_2_CHECKPOINT,
                           *train_args(corpus, interrupted, "conf/pretrain_dinosr_tiny.yaml", *_SHORT)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    assert proc.returncode == -9, proc.stderr[-3000:]
    # The kill hit the epoch-2 write: the epoch-1 checkpoint is intact and still the one on disk.
    checkpoint = torch.load(interrupted / "checkpoint.pth", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == 1
    assert not (interrupted / "model.pth").exists()

    resumed = run_train(corpus, interrupted, *_SHORT, "--resume", "true")
    assert re.search(r"resumed using .*checkpoint\.pth", resumed.stderr)

    expected = torch.load(straight / "model.pth")
    actual = torch.load(interrupted / "model.pth")
    assert expected.keys() == actual.keys()
    assert any(key.startswith("ssl.teacher.") for key in expected)
    assert any(key.startswith("ssl.codebooks.") for key in expected)
    assert int(actual["ssl.num_updates_buffer"]) == 6
    different = [key for key in expected if not torch.equal(expected[key], actual[key])]
    assert different == []
