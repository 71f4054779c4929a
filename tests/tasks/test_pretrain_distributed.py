"""Two processes (torchrun, gloo, CPU) train the tiny DinoSR; their teachers and codebooks stay equal."""
import os
import subprocess
import sys
import textwrap

import torch

from conftest import REPO_ROOT
from pretrain_fixtures import train_args, write_corpus

# dinosr_train, plus: every rank saves its own final state (only rank 0 writes checkpoints).
_SAVE_EVERY_RANK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    import dinosr_espnet
    from dinosr_espnet.tasks.trainer import DinoSRTrainer

    original_run = DinoSRTrainer.run.__func__

    def run(cls, model, **kwargs):
        original_run(cls, model, **kwargs)
        rank = torch.distributed.get_rank()
        torch.save(model.state_dict(), Path(kwargs["trainer_options"].output_dir) / f"rank{rank}.pth")

    DinoSRTrainer.run = classmethod(run)
    from dinosr_espnet.bin.dinosr_train import main
    main(sys.argv[1:])
    """
)


def test_two_gloo_processes_keep_teacher_and_codebooks_identical(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", 12, seed=2)
    script = tmp_path / "train_and_save_ranks.py"
    script.write_text(_SAVE_EVERY_RANK)
    output_dir = tmp_path / "exp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), *train_args(corpus, output_dir, "conf/pretrain_dinosr_tiny.yaml",
                                        "--batch_bins", "96000", "--num_iters_per_epoch", "3",
                                        "--max_epoch", "1", "--scheduler_conf", "max_update=6",
                                        "--dist_backend", "gloo", "--multiprocessing_distributed", "false")]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "[vm:0/2]" in proc.stderr or ":0/2]" in proc.stderr  # ESPnet ran distributed

    rank0 = torch.load(output_dir / "rank0.pth")
    rank1 = torch.load(output_dir / "rank1.pth")
    assert int(rank0["ssl.num_updates_buffer"]) == 3 and int(rank1["ssl.num_updates_buffer"]) == 3
    shared = [key for key in rank0 if key.startswith(("ssl.teacher.", "ssl.codebooks.", "ssl.student."))]
    assert any(key.startswith("ssl.codebooks.") for key in shared)
    assert any(key.startswith("ssl.teacher.") for key in shared)
    different = [key for key in shared if not torch.equal(rank0[key], rank1[key])]
    assert different == []
    # model.pth (written by rank 0) holds the same state.
    final = torch.load(output_dir / "model.pth")
    assert all(torch.equal(final[key], rank0[key]) for key in shared)
