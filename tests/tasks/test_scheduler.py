"""The fairseq tri-stage schedule: phases of spec 2.2, step-exact, resumable."""
import math

import pytest
import torch

from dinosr_espnet.tasks.scheduler import TriStageLR, tri_stage_scale


def _scheduler(max_update=400000, lr=5e-4, **kwargs):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=lr)
    return optimizer, TriStageLR(optimizer, max_update=max_update, **kwargs)


def test_official_phases_are_12k_188k_200k():
    _, scheduler = _scheduler()
    assert (scheduler.warmup_steps, scheduler.hold_steps, scheduler.decay_steps) == (12000, 188000, 200000)


@pytest.mark.parametrize("update, expected", [
    (0, 5e-6),                                   # fairseq step_update(0): init_lr_scale x peak
    (6000, 5e-6 + (5e-4 - 5e-6) * 0.5),          # linear warm-up
    (12000, 5e-4), (199999, 5e-4),               # hold
    (300000, 5e-4 * math.exp(math.log(0.01) * 0.5)),  # exponential decay, half way
    (400000, 5e-6), (500000, 5e-6),              # final_lr_scale x peak, then constant
])
def test_learning_rate_follows_fairseq_tri_stage(update, expected):
    assert tri_stage_scale(update, 12000, 188000, 200000, 0.01, 0.01) * 5e-4 == pytest.approx(expected, rel=1e-9)


def test_first_optimizer_step_uses_update_zero_learning_rate():
    optimizer, scheduler = _scheduler(max_update=100, phase_ratio=(0.1, 0.4, 0.5))
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(5e-6)
    assert seen[10] == pytest.approx(5e-4) and seen[9] < 5e-4


def test_state_dict_round_trip_resumes_schedule():
    optimizer, scheduler = _scheduler(max_update=100, phase_ratio=(0.1, 0.4, 0.5))
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    optimizer2, scheduler2 = _scheduler(max_update=100, phase_ratio=(0.1, 0.4, 0.5))
    scheduler2.load_state_dict(state)
    optimizer.step(); scheduler.step(); optimizer2.step(); scheduler2.step()
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_phase_ratio_must_sum_to_one():
    with pytest.raises(ValueError, match="phase_ratio"):
        _scheduler(phase_ratio=(0.1, 0.1, 0.1))
