"""Mixed precision on CUDA (skipped without a GPU): fp16 with GradScaler, bf16, and the fp32 islands
(codebooks, teacher, instance norm, head log-softmax) that stay fp32 under autocast."""
import pytest
import torch

import accumulation_fixtures as fixtures

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cuda_model():
    task, args, model, _ = fixtures.build(accum_grad=1)
    model = model.cuda()
    optimizer = task.build_optimizers(args, model)[0]   # on the CUDA parameters
    fixtures.install_content_masks(model)
    return model, optimizer


def _fp32_islands(model):
    """Record the dtypes of a student Linear's output and of the teacher targets seen by the loss."""
    seen = {}
    ssl = model.ssl
    original_compute_loss = ssl.compute_loss

    def compute_loss(student_output, time_mask, targets):
        seen["targets"] = {target.dtype for target in targets}
        return original_compute_loss(student_output, time_mask, targets)

    ssl.compute_loss = compute_loss
    ssl.student.encoder.layers[0].feed_forward.fc1.register_forward_hook(
        lambda module, inputs, output: seen.__setitem__("student_linear", output.dtype))
    return seen


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_training_step_keeps_fp32_islands(dtype):
    if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    model, optimizer = _cuda_model()
    seen = _fp32_islands(model)
    scaler = torch.amp.GradScaler("cuda", init_scale=128.0, enabled=dtype is torch.float16)
    _, batch = fixtures.utterance_batches()[0]
    batch = {key: value.cuda() for key, value in batch.items()}
    sums_before = model.ssl.codebooks.sums.clone()
    teacher_before = {k: v.clone() for k, v in model.ssl.teacher.state_dict().items()}
    model.train()
    with torch.autocast("cuda", dtype=dtype):
        loss, stats, weight = model(**batch)
    assert torch.isfinite(loss) and loss.dtype == torch.float32          # fp32 log-softmax / loss
    assert seen["targets"] == {torch.float32}                            # instance-normed teacher in fp32
    assert seen["student_linear"] == dtype                               # the student does run in low precision
    scaler.scale(loss).backward()
    scaler.step(optimizer)   # the step post-hook runs on_optimizer_step
    scaler.update()
    assert model.ssl.num_updates == 1
    assert model.ssl.codebooks.sums.dtype == torch.float32 and model.ssl.codebooks.counts.dtype == torch.float32
    assert not torch.equal(model.ssl.codebooks.sums, sums_before)
    assert all(v.dtype == torch.float32 for v in model.ssl.teacher.state_dict().values() if v.is_floating_point())
    assert any(not torch.equal(v, teacher_before[k]) for k, v in model.ssl.teacher.state_dict().items())
    assert all(p.dtype == torch.float32 for p in model.parameters())     # master weights stay fp32


def test_fp16_overflow_skips_the_step_and_advances_nothing():
    model, optimizer = _cuda_model()
    scaler = torch.amp.GradScaler("cuda", init_scale=128.0)
    _, batch = fixtures.utterance_batches()[0]
    batch = {key: value.cuda() for key, value in batch.items()}
    handle = model.ssl.heads[0].weight.register_hook(lambda grad: grad * float("inf"))
    with torch.autocast("cuda", dtype=torch.float16):
        loss, _, _ = model(**batch)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    handle.remove()
    assert model.ssl.num_updates == 0 and scaler.get_scale() == 64.0
