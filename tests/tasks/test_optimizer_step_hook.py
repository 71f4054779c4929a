"""The teacher EMA and update counter advance once per applied optimizer step (not per forward)."""
import argparse
import math

import pytest
import torch

from accumulation_fixtures import train
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def task():
    import dinosr_espnet  # noqa: F401  (registration hook before ESPnet)
    from dinosr_espnet.tasks.dinosr import DinoSRTask

    return DinoSRTask


def _args(task, tmp_path, *extra: str) -> argparse.Namespace:
    return task.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf/pretrain_dinosr_tiny.yaml"), "--output_dir", str(tmp_path), *extra])


def _batches(count: int, batch: int = 2, samples: int = 16000):
    generator = torch.Generator().manual_seed(0)
    return [([f"u{i}_{j}" for j in range(batch)],
             {"speech": torch.randn(batch, samples, generator=generator) * 0.1,
              "speech_lengths": torch.full((batch,), samples, dtype=torch.long)})
            for i in range(count)]


def test_accum_grad_two_advances_num_updates_once_per_two_forwards(task, tmp_path):
    args = _args(task, tmp_path, "--accum_grad", "2")
    torch.manual_seed(0)
    model = task.build_model(args)
    optimizers = task.build_optimizers(args, model)
    teacher_before = {k: v.clone() for k, v in model.ssl.teacher.state_dict().items()}
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(model.ssl.num_updates))
    train(task, args, model, optimizers, _batches(4))
    assert forwards == [0, 0, 1, 1]
    assert model.ssl.num_updates == 2
    assert any(not torch.equal(teacher_before[k], v) for k, v in model.ssl.teacher.state_dict().items())


def test_step_skipped_for_non_finite_gradients_does_not_advance(task, tmp_path):
    args = _args(task, tmp_path)
    model = task.build_model(args)
    optimizers = task.build_optimizers(args, model)
    teacher_before = {k: v.clone() for k, v in model.ssl.teacher.state_dict().items()}
    handle = model.ssl.heads[0].weight.register_hook(lambda grad: grad * math.inf)
    train(task, args, model, optimizers, _batches(2))  # ESPnet skips both steps
    assert model.ssl.num_updates == 0
    assert all(torch.equal(teacher_before[k], v) for k, v in model.ssl.teacher.state_dict().items())
    handle.remove()
    train(task, args, model, optimizers, _batches(1))
    assert model.ssl.num_updates == 1


def test_amp_grad_scaler_skipped_step_does_not_advance(task, tmp_path):
    args = _args(task, tmp_path)
    model = task.build_model(args)
    optimizer = task.build_optimizers(args, model)[0]
    scaler = torch.amp.GradScaler("cpu")
    _, batch = _batches(1)[0]
    loss, _, _ = model(**batch)
    scaler.scale(loss).backward()
    model.ssl.heads[0].weight.grad.fill_(math.inf)        # overflow: GradScaler must skip the step
    scaler.step(optimizer)
    scaler.update()
    assert model.ssl.num_updates == 0
    optimizer.zero_grad()
    loss, _, _ = model(**batch)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    assert model.ssl.num_updates == 1


def test_bf16_autocast_keeps_codebooks_fp32(task, tmp_path):
    model = task.build_model(_args(task, tmp_path))
    model.train()
    sums_before = model.ssl.codebooks.sums.clone()
    _, batch = _batches(1, samples=24000)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats, weight = model(**batch)
    assert torch.isfinite(loss)
    assert model.ssl.codebooks.sums.dtype == torch.float32
    assert model.ssl.codebooks.counts.dtype == torch.float32
    model.on_optimizer_step()  # the accumulated statistics are applied at the optimizer step
    assert model.ssl.codebooks.sums.dtype == torch.float32
    assert not torch.equal(model.ssl.codebooks.sums, sums_before)  # updated, in fp32
    assert float(weight) > 0 and "target_ppl" in stats


def test_unknown_model_conf_key_is_named(task, tmp_path):
    args = _args(task, tmp_path, "--model_conf", "codebook_sizes=8")
    with pytest.raises(ValueError, match="codebook_sizes") as error:
        task.build_model(args)
    assert "model_conf" in str(error.value)


def test_build_model_records_every_config_field(task, tmp_path):
    from dinosr_espnet.nets.config import DinoSRConfig

    args = _args(task, tmp_path)
    model = task.build_model(args)
    assert DinoSRConfig.from_dict(args.model_conf) == model.ssl.config
    assert set(args.model_conf) == set(DinoSRConfig().to_dict())
    assert all(key.startswith("ssl.") for key in model.state_dict())


def test_data2vec_choice_trains_through_the_same_wrapper(task, tmp_path):
    args = task.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf/pretrain_data2vec_tiny.yaml"), "--output_dir", str(tmp_path)])
    model = task.build_model(args)
    optimizers = task.build_optimizers(args, model)
    assert type(model.ssl).__name__ == "Data2VecModel" and model.health_monitor.codebook_size is None
    train(task, args, model, optimizers, _batches(2))
    assert model.ssl.num_updates == 2
