"""Parsing ESPnet's train.log and drawing the training curves."""
from dinosr_espnet.analysis.plots import plot_training_curves
from dinosr_espnet.analysis.train_log import parse_train_log

LOG = """\
[host] 2026-01-01 10:00:00,000 (trainer:330) INFO: 1/2epoch started
[host] 2026-01-01 10:00:05,000 (trainer:762) INFO: 1epoch:train:1-10batch: iter_time=1.234e-01, forward_time=0.050, loss=5.400, target_ppl=12.500, active_codewords=30.000, ema_decay=999.000, optim0_lr0=1.000e-04, train_time=0.300
[host] 2026-01-01 10:00:10,000 (trainer:762) INFO: 1epoch:train:11-20batch: iter_time=0.120, loss=5.100, target_ppl=nan, active_codewords=40.000, optim0_lr0=2.000e-04
[host] 2026-01-01 10:00:12,000 (trainer:386) INFO: 1epoch results: [train] iter_time=0.120, loss=5.250, target_ppl=13.000, time=1 hour, 2 minutes and 3.5 seconds, total_count=20, gpu_max_cached_mem_GB=0.000e+00, [valid] loss=5.000, target_ppl=14.000, time=2.1 seconds, total_count=5
[host] 2026-01-01 10:00:15,000 (trainer:762) INFO: 2epoch:train:1-10batch: loss=4.000, target_ppl=20.000
[host] 2026-01-01 10:00:20,000 (trainer:762) INFO: 2epoch:train:11-12batch: loss=3.900, target_ppl=21.000pred_ppl=9.500, optim0_lr0=3.000e-04
"""


def test_batch_and_epoch_lines_are_parsed(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(LOG)
    curves = parse_train_log(path)
    assert curves.batch["loss"] == [(10.0, 5.4), (20.0, 5.1), (30.0, 4.0), (32.0, 3.9)]
    # ESPnet drops one ", " separator (reporter.py: idx != len(stats_list)); the glued pair still splits.
    assert curves.batch["target_ppl"][-1] == (32.0, 21.0) and curves.batch["pred_ppl"] == [(32.0, 9.5)]
    assert curves.batch["optim0_lr0"] == [(10.0, 1e-4), (20.0, 2e-4), (32.0, 3e-4)]
    assert curves.epoch["train"]["loss"] == [(1.0, 5.25)]
    assert curves.epoch["valid"]["target_ppl"] == [(1.0, 14.0)]
    # Durations are not numbers and must not leak into neighbouring fields.
    assert "time" not in curves.epoch["train"] and curves.epoch["train"]["total_count"] == [(1.0, 20.0)]


def test_training_curves_png_is_written(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(LOG)
    output = plot_training_curves(parse_train_log(path), tmp_path / "curves.png")
    assert output is not None and output.stat().st_size > 5000
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert plot_training_curves(parse_train_log(empty), tmp_path / "none.png") is None
