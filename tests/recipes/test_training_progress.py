"""Console progress of a training run from its train.log (analysis.train_progress, bin.follow_progress,
utils/run_job.sh's JOB_PROGRESS)."""
import sys

from recipe_helpers import REPO_ROOT, UTILS, run_bash

from dinosr_espnet.analysis.train_progress import TrainingPlan, TrainingProgress, format_duration

PREFIX = "[host] 2026-01-01 10:00:00,000 (trainer:762) INFO: "


def interval(epoch, first, last, loss):
    return f"{PREFIX}{epoch}epoch:train:{first}-{last}batch: iter_time=0.1, loss={loss:.3f}, optim0_lr0=1.000e-04"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_updates_loss_elapsed_and_remaining_from_interval_lines():
    clock = FakeClock()
    progress = TrainingProgress("exp/pretrain_dinosr", TrainingPlan(max_epoch=20, iterations_per_epoch=50),
                                interval_seconds=30, clock=clock)
    assert progress.feed(f"{PREFIX}1/20epoch started") is None
    clock.now += 40
    # 20 of 1000 updates in 40 s -> 0.5 updates/s -> 980 left take 1960 s = 32m40s
    assert progress.feed(interval(1, 1, 20, 6.5)) == (
        "[exp/pretrain_dinosr] update 20/1000 (2%), loss 6.500, elapsed 40s, remaining ~32m40s")
    clock.now += 10
    assert progress.feed(interval(1, 21, 40, 6.0)) is None          # 10 s after the last line: not due
    clock.now += 30
    # epoch 2, batch 10 = update 60 at 80 s; since the first report (update 20 at 40 s): 1/s -> 940 s
    assert progress.feed(interval(2, 1, 10, 5.25)) == (
        "[exp/pretrain_dinosr] update 60/1000 (6%), loss 5.250, elapsed 1m20s, remaining ~15m40s")
    assert progress.feed(f"{PREFIX}1epoch results: [train] loss=5.0, [valid] loss=4.9") is None
    assert progress.feed(interval(2, 1, 10, 5.0).replace(":train:", ":valid:")) is None
    clock.now += 1
    last = progress.feed(interval(20, 31, 50, 2.0))                  # the last update always prints
    assert last.startswith("[exp/pretrain_dinosr] update 1000/1000 (100%), loss 2.000")


def test_a_resumed_run_measures_its_rate_from_where_it_resumed():
    clock = FakeClock()
    progress = TrainingProgress("run", TrainingPlan(max_epoch=10, iterations_per_epoch=100, accum_grad=2),
                                clock=clock)
    clock.now += 50
    # resumed at epoch 6 (update 250 of 500); 25 updates in 50 s -> 225 left = 450 s
    assert progress.feed(interval(6, 1, 50, 3.0)) == "[run] update 275/500 (55%), loss 3.000, elapsed 50s, remaining ~7m30s"


def test_plan_from_config_yaml_and_epoch_estimate_without_iterations_per_epoch(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("max_epoch: 8\nnum_iters_per_epoch: 50\naccum_grad: 1\n")
    clock = FakeClock()
    progress = TrainingProgress("ft", config_path=config, interval_seconds=0, clock=clock)
    clock.now += 10
    assert progress.feed(interval(1, 1, 40, 120.0)).startswith("[ft] update 40/400 (10%), loss 120.000")
    # no num_iters_per_epoch: epoch and batch first; after epoch 1 the total is estimated from its length
    config.write_text("max_epoch: 3\nnum_iters_per_epoch: null\n")
    progress = TrainingProgress("ft", config_path=config, interval_seconds=0, clock=clock)
    assert progress.feed(interval(1, 1, 30, 9.0)).startswith("[ft] epoch 1/3, batch 30, loss 9.000")
    assert progress.feed(interval(1, 31, 60, 8.0)).startswith("[ft] epoch 1/3, batch 60")
    assert progress.feed(interval(2, 1, 30, 7.0)).startswith("[ft] update 90/180 (est.) (50%)")


def test_held_back_line_is_flushed_and_durations_read_well():
    clock = FakeClock()
    progress = TrainingProgress("run", TrainingPlan(max_epoch=1, iterations_per_epoch=100), clock=clock)
    assert progress.feed(interval(1, 1, 10, 4.0)) is not None
    assert progress.feed(interval(1, 11, 20, 3.0)) is None
    assert progress.flush().startswith("[run] update 20/100 (20%), loss 3.000")
    assert progress.flush() is None
    assert [format_duration(s) for s in (5, 192, 3720)] == ["5s", "3m12s", "1h02m"]


FAKE_TRAINING = r"""
import sys, time
from pathlib import Path
out = Path(sys.argv[1])
(out / "config.yaml").write_text("max_epoch: 2\nnum_iters_per_epoch: 10\naccum_grad: 1\n")
prefix = "[host] 2026-01-01 10:00:00,000 (trainer:762) INFO: "
print(prefix + "1/2epoch started", flush=True)
for epoch in (1, 2):
    for last in (5, 10):
        print(prefix + f"{epoch}epoch:train:{last - 4}-{last}batch: loss={10 - epoch - last / 10:.3f}", flush=True)
        time.sleep(0.3)
"""


def test_run_job_shows_progress_on_the_console_and_keeps_the_full_log(tmp_path):
    script = tmp_path / "fake_training.py"
    script.write_text(FAKE_TRAINING)
    log = tmp_path / "exp" / "train.log"
    follower = f"{sys.executable} -m dinosr_espnet.bin.follow_progress --interval 0 --poll 0.1"
    result = run_bash([str(UTILS / "run_job.sh"), str(log), sys.executable, str(script), str(tmp_path / "exp")],
                      cwd=tmp_path, env={"JOB_PROGRESS": follower, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines, result.stderr
    assert all(line.startswith(f"[{tmp_path / 'exp'}] update ") for line in lines), lines
    # the last report: update 20 of 2 x 10, loss 10 - 2 - 1.0
    assert lines[-1].startswith(f"[{tmp_path / 'exp'}] update 20/20 (100%), loss 7.000, elapsed ")
    text = log.read_text()
    assert "2epoch:train:6-10batch: loss=7.000" in text and "exit status 0" in text
    assert "update 20/20" not in text                  # progress goes to the console only
