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


# k_proj's bias has an identically zero gradient (softmax is shift-invariant over keys); its
# rounding noise (~1e-10) is all Adam sees, so it is only checked to stay negligible.
_ZERO_GRADIENT = ("k_proj.bias",)


def _assert_same_state(actual, expected, zero_gradient_keys, what: str) -> None:
    """Every tensor equal to 1e-5 relative (``||a - b|| / ||b||``).

    Measured fp32 rounding floor: <= 1.6e-6 on the student/teacher/codebooks (the CNN LayerNorm
    biases, zero-initialised and two Adam steps old) and <= 3.5e-6 on Adam's moments; the faults
    this guards against (micro-batches weighted equally, one codebook EMA step per micro-batch)
    give 3e-2 to 1.
    """
    assert actual.keys() == expected.keys(), what
    for key, value in expected.items():
        if not value.is_floating_point():
            assert torch.equal(actual[key], value), f"{what}: {key}"
        elif key in zero_gradient_keys:
            assert float(actual[key].abs().max()) < 1e-6 and float(value.abs().max()) < 1e-6, key
        else:
            error = float((actual[key] - value).norm() / value.norm().clamp(min=1e-30))
            assert error <= 1e-5, f"{what}: {key} differs by {error:.3g} (relative)"


def test_accumulation_equals_more_processes_equals_one_big_batch(tmp_path):
    """G GPUs x accum_grad a == G*a GPUs == one batch: two optimizer steps on micro-batches B1..B4
    (1 process, accum 2 | 2 gloo processes, accum 1 | 1 process on B1+B2 then B3+B4) end in the
    same student, teacher, codebooks and Adam state (fp32)."""
    import accumulation_fixtures as fixtures

    batches = fixtures.utterance_batches()

    task, args, accumulated, optimizers = fixtures.build(accum_grad=2)
    trained = [name for name, parameter in accumulated.named_parameters() if parameter.requires_grad]
    zero_gradient = {key for key in accumulated.state_dict() if key.endswith(_ZERO_GRADIENT)}
    zero_gradient |= {f"optimizer.{index}.{moment}" for index, name in enumerate(trained)
                      if name.endswith(_ZERO_GRADIENT) for moment in ("exp_avg", "exp_avg_sq")}
    accumulated_frames = fixtures.install_content_masks(accumulated)
    fixtures.train(task, args, accumulated, optimizers, batches)
    accumulated_state = fixtures.final_state(accumulated, optimizers[0])
    # Micro-batches differ in masked frames: weighting them equally would change the result.
    assert len(set(accumulated_frames)) > 1, accumulated_frames

    task, args, merged, optimizers = fixtures.build(accum_grad=1)
    fixtures.install_content_masks(merged)
    fixtures.train(task, args, merged, optimizers,
                   [fixtures.merge(batches[0:2]), fixtures.merge(batches[2:4])])
    merged_state = fixtures.final_state(merged, optimizers[0])

    output_dir = tmp_path / "ranks"
    output_dir.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               fixtures.__file__, str(output_dir)]
    # the whole test took 185 s on the shared 2-core CPU once, and > 400 s for the gloo part alone under load
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ranks = [torch.load(output_dir / f"rank{rank}.pth") for rank in range(2)]

    assert int(accumulated_state["ssl.num_updates_buffer"]) == 2
    assert any(key.startswith("ssl.codebooks.") for key in accumulated_state)
    assert any(key.startswith("optimizer.") for key in accumulated_state)
    _assert_same_state(merged_state, accumulated_state, zero_gradient, "1 process on B1+B2 vs accum 2")
    for rank, saved in enumerate(ranks):
        _assert_same_state(saved["state"], accumulated_state, zero_gradient, f"gloo rank {rank} vs accum 2")
    assert sorted(ranks[0]["masked_frames"] + ranks[1]["masked_frames"]) == sorted(accumulated_frames)
