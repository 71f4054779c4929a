"""``--encoder_lr_scale``: the encoder trains at a multiple of ``optim_conf.lr``, the CTC layer at it."""
import pytest
import torch

from conftest import REPO_ROOT
from dinosr_espnet.asr.token_list import write_char_token_list


def _task_args_and_model(tmp_path, *extra):
    import dinosr_espnet  # noqa: F401
    from dinosr_espnet.registry import register_now

    register_now()
    from dinosr_espnet.asr.task import DinoSRASRTask

    token_list = write_char_token_list(tmp_path / "tokens.txt")
    args = DinoSRASRTask.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml"), "--token_list", str(token_list),
         "--output_dir", str(tmp_path / "exp"), "--optim", "adam", "--optim_conf", "lr=0.01",
         "--encoder_conf", "freeze_finetune_updates=0", *extra])
    torch.manual_seed(0)
    return DinoSRASRTask, args, DinoSRASRTask.build_model(args)


def _one_update(model, optimizer):
    torch.manual_seed(1)
    speech = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 12000])
    text = torch.tensor([[5, 6, 7, 8], [9, 10, -1, -1]])
    text_lengths = torch.tensor([4, 2])
    model.train()
    loss, _, _ = model(speech=speech, speech_lengths=lengths, text=text, text_lengths=text_lengths)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_adam_first_step_moves_encoder_by_the_scaled_lr_and_the_ctc_layer_by_the_full_lr(tmp_path):
    task, args, model = _task_args_and_model(tmp_path, "--encoder_lr_scale", "0.1")
    (optimizer,) = task.build_optimizers(args, model)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([1e-3, 1e-2])
    encoder_before = {n: p.detach().clone() for n, p in model.encoder.named_parameters() if p.requires_grad}
    ctc_before = model.ctc.ctc_lo.weight.detach().clone()
    _one_update(model, optimizer)
    # Adam's first step is lr * g / (|g| + eps): about lr for every entry with a gradient well above eps.
    encoder_steps = torch.cat([(p.detach() - encoder_before[n]).abs().flatten()
                               for n, p in model.encoder.named_parameters() if n in encoder_before])
    ctc_steps = (model.ctc.ctc_lo.weight.detach() - ctc_before).abs()
    assert float(encoder_steps.max()) == pytest.approx(1e-3, rel=1e-3)
    assert float(ctc_steps.max()) == pytest.approx(1e-2, rel=1e-3)


def test_the_scheduler_keeps_the_ratio_between_the_two_groups(tmp_path):
    from espnet2.schedulers.tristage_lr import TristageLR

    task, args, model = _task_args_and_model(tmp_path, "--encoder_lr_scale", "0.25")
    (optimizer,) = task.build_optimizers(args, model)
    scheduler = TristageLR(optimizer, max_steps=20, warmup_ratio=0.25, hold_ratio=0.25, decay_ratio=0.5)
    for _ in range(20):
        encoder_lr, other_lr = (group["lr"] for group in optimizer.param_groups)
        assert encoder_lr == pytest.approx(0.25 * other_lr)
        optimizer.step()
        scheduler.step()


def test_every_parameter_is_in_exactly_one_group(tmp_path):
    task, args, model = _task_args_and_model(tmp_path, "--encoder_lr_scale", "0.5")
    (optimizer,) = task.build_optimizers(args, model)
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}


def test_default_is_espnets_single_group(tmp_path):
    task, args, model = _task_args_and_model(tmp_path)
    (optimizer,) = task.build_optimizers(args, model)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_a_scale_that_is_not_positive_is_refused(tmp_path, bad):
    task, args, model = _task_args_and_model(tmp_path, "--encoder_lr_scale", bad)
    with pytest.raises(ValueError, match="encoder_lr_scale"):
        task.build_optimizers(args, model)
