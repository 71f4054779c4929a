import pytest
import torch
from nets_test_utils import deterministic_tiny, random_batch
from torch.nn import functional as F

from dinosr_espnet.nets.dinosr import DinoSRModel
from dinosr_espnet.nets.teacher import annealed_ema_decay, masked_instance_norm


@pytest.mark.parametrize("updates, expected", [(0, 0.999), (15000, 0.99945), (30000, 0.9999), (100000, 0.9999),
                                               (200000, 0.9999), (200001, 1.0), (300000, 1.0)])
def test_decay_schedule(updates, expected):
    assert annealed_ema_decay(updates, 0.999, 0.9999, 30000, freeze_step=200001) == pytest.approx(expected, abs=1e-12)


def test_model_reports_the_schedule_and_counts_optimizer_steps():
    model = DinoSRModel(deterministic_tiny(ema_anneal_end_step=4, freeze_teacher_step=6))
    decays = []
    for _ in range(7):
        decays.append(model.ema_decay())
        model.on_optimizer_step()
    assert decays[:5] == pytest.approx([0.999, 0.999225, 0.99945, 0.999675, 0.9999])
    assert decays[5:] == [0.9999, 1.0]
    assert model.num_updates == 7 and int(model.state_dict()["num_updates_buffer"]) == 7


def test_teacher_starts_as_a_copy_of_the_student_encoder():
    model = DinoSRModel(deterministic_tiny())
    student = model.student.encoder.state_dict()
    teacher = model.teacher.encoder.state_dict()
    assert student.keys() == teacher.keys()
    assert all(torch.equal(student[key], teacher[key]) for key in student)
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(model.student.encoder.parameters(),
                                                           model.teacher.encoder.parameters()))


def test_ema_step_averages_layers_and_copies_positional_convolution():
    model = DinoSRModel(deterministic_tiny())
    teacher_before = {k: v.clone() for k, v in model.teacher.encoder.state_dict().items()}
    with torch.no_grad():
        for parameter in model.student.encoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    student = model.student.encoder.state_dict()
    model.on_optimizer_step()  # uses the decay for num_updates 1
    decay = model.ema_decay()
    teacher = model.teacher.encoder.state_dict()
    for key in student:
        if key.startswith("pos_conv."):
            assert torch.equal(teacher[key], student[key]), key
        else:
            expected = decay * teacher_before[key] + (1 - decay) * student[key]
            assert torch.allclose(teacher[key], expected, atol=1e-7), key
            assert not torch.allclose(teacher[key], student[key]), key


def test_teacher_gets_no_gradient_and_stays_in_eval_mode():
    model = DinoSRModel(deterministic_tiny(dropout=0.3, encoder_layerdrop=0.5)).train()
    assert not model.teacher.encoder.training and model.student.training
    assert all(not parameter.requires_grad for parameter in model.teacher.parameters())
    waveform, lengths = random_batch([8000, 8000])
    model(waveform, lengths).loss.backward()
    assert all(parameter.grad is None for parameter in model.teacher.parameters())
    assert model.student.mask_emb.grad is not None
    features = torch.randn(1, 20, 64)
    first = model.teacher.layer_targets(features, None, 2)
    second = model.teacher.layer_targets(features, None, 2)  # no dropout / LayerDrop: deterministic
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_teacher_targets_are_top_k_ffn_outputs_instance_normed():
    model = DinoSRModel(deterministic_tiny(encoder_layers=3, average_top_k_layers=2))
    captured = []
    hooks = [layer.feed_forward.fc2.register_forward_hook(lambda m, i, output: captured.append(output))
             for layer in model.teacher.encoder.layers]
    features = torch.randn(2, 20, 64)
    targets = model.teacher.layer_targets(features, None, 2)
    for hook in hooks:
        hook.remove()
    assert len(targets) == 2
    for target, raw in zip(targets, captured[1:]):  # layers 2 and 3 of 3
        expected = F.instance_norm(raw.transpose(1, 2)).transpose(1, 2)
        assert torch.allclose(target, expected, atol=1e-5)
        assert target.dtype == torch.float32


def test_instance_norm_is_per_utterance_per_channel_over_valid_frames():
    torch.manual_seed(0)
    x = torch.randn(2, 30, 4) * torch.tensor([1.0, 5.0, 0.5, 2.0]) + torch.tensor([3.0, -1.0, 0.0, 10.0])
    padding = torch.zeros(2, 30, dtype=torch.bool)
    padding[1, 20:] = True
    normalised = masked_instance_norm(x, padding)
    alone = masked_instance_norm(x[1:, :20], None)
    assert torch.allclose(normalised[1, :20], alone[0], atol=1e-5)
    assert torch.allclose(normalised[0], masked_instance_norm(x[:1], None)[0], atol=1e-6)
    assert normalised[0].mean(dim=0).abs().max() < 1e-5
    assert (normalised[0].var(dim=0, unbiased=False) - 1).abs().max() < 1e-3
    assert normalised[1, 20:].abs().max() == 0


def test_front_end_and_teacher_freeze_after_freeze_step():
    model = DinoSRModel(deterministic_tiny(freeze_teacher_step=2))
    waveform, lengths = random_batch([8000, 8000])
    model.on_optimizer_step()
    assert not model.student.freeze_front_end
    model(waveform, lengths).loss.backward()
    assert model.student.feature_extractor.conv_layers[0].conv.weight.grad is not None
    model.zero_grad(set_to_none=True)
    model.on_optimizer_step()  # update 2: frozen from here on
    front_end = {k: v.clone() for k, v in model.student.state_dict().items()
                 if k.split(".")[0] in ("feature_extractor", "layer_norm", "post_extract_proj")}
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    model(waveform, lengths).loss.backward()
    assert model.student.feature_extractor.conv_layers[0].conv.weight.grad is None
    assert model.student.post_extract_proj.weight.grad is None
    assert model.student.encoder.layers[0].feed_forward.fc1.weight.grad is not None
    with torch.no_grad():  # e.g. weight decay, or any optimizer touching the frozen front end
        model.student.post_extract_proj.weight.mul_(0.5)
        for parameter in model.student.encoder.parameters():
            parameter.add_(1.0)
    model.on_optimizer_step()
    assert all(torch.equal(model.student.state_dict()[k], v) for k, v in front_end.items())
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in teacher.items())


def test_resumed_model_after_freeze_step_is_frozen():
    config = deterministic_tiny(freeze_teacher_step=2)
    model = DinoSRModel(config)
    for _ in range(3):
        model.on_optimizer_step()
    resumed = DinoSRModel(config)
    resumed.load_state_dict(model.state_dict())
    waveform, lengths = random_batch([8000])
    resumed(waveform, lengths).loss.backward()
    assert resumed.num_updates == 3 and resumed.student.freeze_front_end
    assert resumed.student.feature_extractor.conv_layers[0].conv.weight.grad is None


def test_forward_passes_do_not_step_the_teacher_only_optimizer_steps_do():
    model = DinoSRModel(deterministic_tiny()).train()
    with torch.no_grad():
        for parameter in model.student.encoder.parameters():
            parameter.add_(0.1)
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    waveform, lengths = random_batch([8000, 8000])
    for _ in range(2):  # gradient accumulation: two micro-batches
        model(waveform, lengths).loss.backward()
    assert model.num_updates == 0
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in teacher.items())
    model.on_optimizer_step()
    assert model.num_updates == 1
    key = "encoder.layers.0.feed_forward.fc1.weight"
    assert not torch.equal(model.teacher.state_dict()[key], teacher[key])


def test_teacher_sees_the_unmasked_features_before_input_dropout():
    model = DinoSRModel(deterministic_tiny(dropout_input=0.5)).train()
    captured = {}
    hook = model.teacher.encoder.register_forward_pre_hook(lambda module, args: captured.update(x=args[0]))
    waveform, lengths = random_batch([8000, 6000])
    model(waveform, lengths)
    hook.remove()
    expected = model.student.extract_features(waveform, lengths).features
    assert torch.allclose(captured["x"], expected, atol=1e-6)
    assert not (captured["x"] == model.student.mask_emb).all(dim=-1).any()


def test_loading_a_checkpoint_after_the_freeze_keeps_the_loaded_front_end():
    config = deterministic_tiny(freeze_teacher_step=1)
    model = DinoSRModel(config)
    model.on_optimizer_step()  # frozen, snapshot taken
    other = DinoSRModel(config)
    other.on_optimizer_step()
    model.load_state_dict(other.state_dict())
    model.on_optimizer_step()
    key = "post_extract_proj.weight"
    assert torch.equal(model.student.state_dict()[key], other.student.state_dict()[key])


def test_foreach_ema_step_is_bit_identical_to_the_per_parameter_formula():
    """spec 1.4 / fairseq EMAModule: per parameter ``ema.mul_(decay); ema.add_(student, alpha=1-decay)``,
    ``pos_conv.*`` copied; computed here tensor by tensor, compared bit for bit."""
    model = DinoSRModel(deterministic_tiny())
    with torch.no_grad():
        for parameter in model.student.encoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    decay = 0.99731  # not a round number: rounding differences would show
    student = {name: tensor.clone() for name, tensor in model.student.encoder.named_parameters()}
    expected = {}
    for name, teacher in model.teacher.encoder.named_parameters():
        if name.startswith("pos_conv."):
            expected[name] = student[name].clone()
        else:
            expected[name] = teacher.detach().clone().mul_(decay).add_(student[name], alpha=1.0 - decay)
    model.teacher.step(model.student.encoder, decay)
    for name, teacher in model.teacher.encoder.named_parameters():
        assert torch.equal(teacher, expected[name]), name
        assert torch.equal(student[name], dict(model.student.encoder.named_parameters())[name])  # untouched


def test_data2vec_never_freezes_its_teacher_or_front_end():
    from dinosr_espnet.nets import Data2VecModel

    model = Data2VecModel(deterministic_tiny(freeze_teacher_step=2)).train()
    waveform, lengths = random_batch([8000, 8000])
    for update in range(1, 6):  # past the freeze step
        with torch.no_grad():  # stands for an optimizer step of the student
            for parameter in model.student.encoder.parameters():
                parameter.add_(0.01)
        teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
        model.on_optimizer_step()
        assert model.num_updates == update and not model.teacher_frozen and model.ema_decay() < 1.0
        moved = [k for k, v in model.teacher.state_dict().items() if not torch.equal(v, teacher[k])]
        assert any(".layers." in k for k in moved), update
        model.zero_grad(set_to_none=True)
        model(waveform, lengths).loss.backward()
        assert model.student.feature_extractor.conv_layers[0].conv.weight.grad is not None, update
        assert not model.student.freeze_front_end
