"""Health lines every N updates and loud warnings on codebook or teacher collapse."""
import logging

import torch

from dinosr_espnet.tasks.health import TrainingHealthMonitor


def _monitor(**kwargs):
    monitor = TrainingHealthMonitor(interval=2, codebook_size=256, **kwargs)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    monitor.attach_optimizer(optimizer)
    return monitor


def test_health_line_every_interval_updates_with_lr_and_throughput(caplog):
    monitor = _monitor()
    caplog.set_level(logging.INFO)
    monitor.observe({"loss": 4.0, "target_ppl": 200.0, "active_codewords": 250.0}, 32000)
    assert monitor.on_optimizer_step() is None
    monitor.observe({"loss": 2.0, "target_ppl": 100.0, "active_codewords": 240.0}, 32000)
    means = monitor.on_optimizer_step()
    assert means["loss"] == 3.0 and means["target_ppl"] == 150.0 and means["lr"] == 1e-3
    assert means["audio_seconds_per_second"] > 0
    assert "health: update 2" in caplog.text and "target_ppl=150" in caplog.text
    assert monitor.warnings_issued == 0


def test_codebook_collapse_is_warned(caplog):
    monitor = _monitor()
    messages = monitor.check({"loss": 2.0, "target_ppl": 20.0})  # < 0.1 x 256
    assert len(messages) == 1 and "CODEBOOK COLLAPSE" in messages[0]
    assert any(r.levelno == logging.WARNING and "CODEBOOK COLLAPSE" in r.message for r in caplog.records)


def test_loss_far_below_expected_range_is_warned():
    monitor = _monitor()
    messages = monitor.check({"loss": 0.2, "target_ppl": 180.0})  # issue #2's collapsed run
    assert len(messages) == 1 and "TEACHER COLLAPSE" in messages[0]


def test_data2vec_monitor_has_no_codebook_checks():
    monitor = TrainingHealthMonitor(interval=1, codebook_size=None)
    assert monitor.check({"loss": 0.01, "target_ppl": 1.0}) == []
