"""DinoSREncoder: ESPnet ASR encoder over the DinoSR student (CTC fine-tuning behaviour)."""
import copy
from pathlib import Path

import pytest
import torch
import yaml

from dinosr_espnet.asr.encoder import DinoSREncoder
from dinosr_espnet.nets import DinoSRModel, dinosr_tiny

VOCABULARY = 31


def tiny_encoder(**options) -> DinoSREncoder:
    torch.manual_seed(0)
    return DinoSREncoder(input_size=1, model_conf=dinosr_tiny().to_dict(), **options)


def padded_batch(lengths=(16000, 11000, 6400)):
    generator = torch.Generator().manual_seed(1)
    waveforms = torch.randn(len(lengths), max(lengths), generator=generator)
    lengths = torch.tensor(lengths)
    waveforms = waveforms.masked_fill(torch.arange(waveforms.size(1))[None] >= lengths[:, None], 0.0)
    return waveforms, lengths


def expected_frames(num_samples: int) -> int:
    for _, kernel, stride in dinosr_tiny().conv_feature_layers:
        num_samples = (num_samples - kernel) // stride + 1
    return num_samples


def write_pretraining_checkpoint(directory: Path, config, overrides_in_yaml=None) -> DinoSRModel:
    """A pre-training run's ``model.pth`` (``ssl.*`` keys) and ``config.yaml`` (``model_conf``)."""
    torch.manual_seed(3)
    model = DinoSRModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({f"ssl.{key}": value for key, value in model.state_dict().items()}, directory / "model.pth")
    model_conf = {**config.to_dict(), **(overrides_in_yaml or {})}
    (directory / "config.yaml").write_text(yaml.safe_dump({"model": "dinosr", "model_conf": model_conf}))
    return model


def ctc_like_loss(encoder: DinoSREncoder, head: torch.nn.Linear, waveforms, lengths) -> torch.Tensor:
    x, _, _ = encoder(waveforms, lengths)
    return head(x).log_softmax(-1).mean()


def test_output_frames_and_lengths_follow_the_cnn_for_padded_batches():
    encoder = tiny_encoder().eval()
    waveforms, lengths = padded_batch()
    x, olens, states = encoder(waveforms, lengths)
    expected = [expected_frames(int(n)) for n in lengths]
    assert olens.tolist() == expected
    assert x.shape == (3, max(expected), encoder.output_size())
    assert states is None
    # a padded utterance encodes as it does alone
    alone, alone_lengths, _ = encoder(waveforms[2:, : int(lengths[2])], lengths[2:])
    assert alone.shape[1] == alone_lengths[0] == expected[2]
    torch.testing.assert_close(x[2, : expected[2]], alone[0], atol=1e-4, rtol=1e-4)


def test_accepts_a_trailing_feature_axis_of_one():
    encoder = tiny_encoder().eval()
    waveforms, lengths = padded_batch()
    torch.testing.assert_close(encoder(waveforms.unsqueeze(-1), lengths)[0], encoder(waveforms, lengths)[0])


def test_transformer_gets_no_gradient_before_freeze_finetune_updates_and_does_after():
    encoder = tiny_encoder(freeze_finetune_updates=2).train()
    head = torch.nn.Linear(encoder.output_size(), VOCABULARY)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    waveforms, lengths = padded_batch()
    transformer = dict(encoder.student.encoder.named_parameters())
    for update in range(2):
        assert int(encoder.num_updates) == update and encoder.transformer_frozen
        optimizer.zero_grad()
        ctc_like_loss(encoder, head, waveforms, lengths).backward()
        assert all(p.grad is None for p in encoder.parameters()), "student trained while frozen"
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
        optimizer.step()
    assert int(encoder.num_updates) == 2 and not encoder.transformer_frozen
    optimizer.zero_grad()
    ctc_like_loss(encoder, head, waveforms, lengths).backward()
    missing = [name for name, p in transformer.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient after the freeze: {missing}"
    assert encoder.student.post_extract_proj.weight.grad is not None
    assert encoder.student.mask_emb.grad is not None


def test_updates_are_counted_per_optimizer_step_not_per_forward():
    encoder = tiny_encoder(freeze_finetune_updates=5).train()
    own = torch.optim.SGD(encoder.parameters(), lr=0.0)
    other = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.0)
    waveforms, lengths = padded_batch()
    for _ in range(3):  # gradient accumulation / validation: forwards without an update
        encoder(waveforms, lengths)
    other.step()  # an optimizer that does not hold the encoder
    assert int(encoder.num_updates) == 0
    own.step()
    own.step()
    assert int(encoder.num_updates) == 2
    assert int(encoder.state_dict()["num_updates"]) == 2  # checkpointed: --resume keeps the count
    copied = copy.deepcopy(encoder)  # a copy counts its own optimizer's steps only
    copied(waveforms, lengths)
    torch.optim.SGD(copied.parameters(), lr=0.0).step()
    assert (int(copied.num_updates), int(encoder.num_updates)) == (3, 2)


def test_cnn_never_gets_a_gradient():
    encoder = tiny_encoder(freeze_finetune_updates=0).train()
    head = torch.nn.Linear(encoder.output_size(), VOCABULARY)
    ctc_like_loss(encoder, head, *padded_batch()).backward()
    assert all(p.grad is None for p in encoder.student.feature_extractor.parameters())
    assert encoder.student.encoder.layers[0].feed_forward.fc1.weight.grad is not None


def test_scratch_option_trains_the_cnn():
    encoder = tiny_encoder(freeze_feature_extractor=False).train()
    head = torch.nn.Linear(encoder.output_size(), VOCABULARY)
    ctc_like_loss(encoder, head, *padded_batch()).backward()
    first_conv = encoder.student.feature_extractor.conv_layers[0].conv.weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


class _MaskRecorder:
    """Wraps the student's forward to record the masks the encoder passes."""

    def __init__(self, encoder: DinoSREncoder):
        self.calls = []
        self._forward = encoder.student.forward
        encoder.student.forward = self

    def __call__(self, waveform, lengths, time_mask=None, channel_mask=None, **kwargs):
        self.calls.append((time_mask, channel_mask))
        return self._forward(waveform, lengths, time_mask=time_mask, channel_mask=channel_mask, **kwargs)


def test_masking_only_in_training_mode():
    encoder = tiny_encoder(mask_prob=0.65, mask_channel_prob=0.5, mask_channel_length=8,
                           activation_dropout=0.0)
    recorder = _MaskRecorder(encoder)
    waveforms, lengths = padded_batch()
    encoder.eval()
    evaluated, olens, _ = encoder(waveforms, lengths)
    assert recorder.calls[-1] == (None, None)
    torch.testing.assert_close(evaluated, encoder(waveforms, lengths)[0])  # deterministic
    encoder.train()
    trained, _, _ = encoder(waveforms, lengths)
    time_mask, channel_mask = recorder.calls[-1]
    assert time_mask is not None and channel_mask is not None
    assert time_mask.shape == (3, int(olens.max())) and channel_mask.shape == (3, encoder.output_size())
    padded = torch.arange(time_mask.size(1))[None] >= olens[:, None]
    assert time_mask.any() and not (time_mask & padded).any()
    assert channel_mask.any(dim=1).all()
    # dropouts are 0 here, so only masking makes training differ from evaluation
    assert not torch.allclose(trained, evaluated)


def test_loading_a_pretraining_checkpoint_gives_exactly_the_students_weights(tmp_path):
    pretrained = write_pretraining_checkpoint(tmp_path / "pretrain", dinosr_tiny())
    encoder = DinoSREncoder(pretrained_model=str(tmp_path / "pretrain" / "model.pth"))
    expected = pretrained.student.state_dict()
    loaded = encoder.student.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    assert not any(key.startswith(("teacher", "codebook", "head")) for key in encoder.state_dict())
    # fine-tuning regularisation replaces the pre-training values of config.yaml
    assert encoder.config.dropout == 0.0 and encoder.config.feature_grad_mult == 0.0
    assert encoder.config.encoder_layers == dinosr_tiny().encoder_layers


def test_architecture_only_option_keeps_random_weights(tmp_path):
    pretrained = write_pretraining_checkpoint(tmp_path / "pretrain", dinosr_tiny(encoder_layers=2))
    encoder = DinoSREncoder(pretrained_model=str(tmp_path / "pretrain" / "model.pth"),
                            load_pretrained_weights=False)
    assert len(encoder.student.encoder.layers) == 2
    assert not torch.equal(encoder.student.post_extract_proj.weight, pretrained.student.post_extract_proj.weight)


def test_mismatching_checkpoint_is_rejected_naming_keys_and_shapes(tmp_path):
    write_pretraining_checkpoint(tmp_path / "pretrain", dinosr_tiny())
    checkpoint = str(tmp_path / "pretrain" / "model.pth")
    with pytest.raises(ValueError) as shapes:
        DinoSREncoder(pretrained_model=checkpoint, model_conf={"encoder_ffn_embed_dim": 96})
    message = str(shapes.value)
    assert checkpoint in message
    assert "encoder.layers.0.feed_forward.fc1.weight: checkpoint (128, 64) vs model (96, 64)" in message
    with pytest.raises(ValueError) as layers:
        DinoSREncoder(pretrained_model=checkpoint, model_conf={"encoder_layers": 2})
    assert "checkpoint keys the model does not have" in str(layers.value)
    assert "encoder.layers.2." in str(layers.value)


def test_checkpoint_that_is_not_a_pretraining_run_is_rejected(tmp_path):
    directory = tmp_path / "asr"
    directory.mkdir()
    torch.save({"encoder.student.mask_emb": torch.zeros(64)}, directory / "model.pth")
    (directory / "config.yaml").write_text(yaml.safe_dump({"model_conf": dinosr_tiny().to_dict()}))
    with pytest.raises(ValueError, match=r"no 'ssl\.student\.\*' keys"):
        DinoSREncoder(pretrained_model=str(directory / "model.pth"))
    (directory / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        DinoSREncoder(pretrained_model=str(directory / "model.pth"))


def test_rejects_feature_inputs():
    with pytest.raises(ValueError, match="input_size: 1"):
        DinoSREncoder(input_size=80, model_conf=dinosr_tiny().to_dict())


def test_imported_official_checkpoint_loads_the_students_weights(tmp_path):
    """``bin.import_fairseq`` output (official key layout converted) loads like a pre-training run."""
    from dinosr_espnet.bin.import_fairseq import import_checkpoint
    from dinosr_espnet.nets import dinosr_to_fairseq

    config = dinosr_tiny()
    torch.manual_seed(5)
    original = DinoSRModel(config)
    cfg_model = {"_name": "dinosr", "encoder_attention_heads": config.encoder_attention_heads,
                 "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2",
                 "conv_pos": config.conv_pos, "conv_pos_groups": config.conv_pos_groups,
                 "pos_conv_depth": config.pos_conv_depth, "mask_prob": 0.8, "discrete": True}
    torch.save({"cfg": {"model": cfg_model}, "model": dinosr_to_fairseq(original.state_dict())},
               tmp_path / "dinosr.ckpt")
    output = tmp_path / "pretrain_official" / "model.pth"
    import_checkpoint(tmp_path / "dinosr.ckpt", output)
    encoder = DinoSREncoder(pretrained_model=str(output))
    loaded = encoder.student.state_dict()
    for key, value in original.student.state_dict().items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.timeout(240)
def test_compiled_encoder_equals_eager_on_a_padded_batch_forward_and_backward():
    """model_conf compile: true (aot_eager: graph capture without code generation, see
    tests/nets/test_compilation.py) through the key-padding attention path."""
    from dinosr_espnet.nets.compilation import is_compiled

    eager = tiny_encoder(mask_prob=0.0).train()
    torch.manual_seed(0)
    compiled = DinoSREncoder(input_size=1, mask_prob=0.0, model_conf=dinosr_tiny(
        compile=True, compile_backend="aot_eager").to_dict()).train()
    compiled.load_state_dict(eager.state_dict())
    assert any(is_compiled(module) for module in compiled.modules())
    assert not any(is_compiled(module) for module in eager.modules())
    waveforms, lengths = padded_batch()
    torch.manual_seed(5)
    head = torch.nn.Linear(eager.output_size(), VOCABULARY)
    losses = []
    for encoder in (eager, compiled):
        torch.manual_seed(7)  # same dropout masks
        loss = ctc_like_loss(encoder, head, waveforms, lengths)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    eager_gradients = dict(eager.named_parameters())
    for name, parameter in compiled.named_parameters():
        if parameter.grad is not None or eager_gradients[name].grad is not None:
            torch.testing.assert_close(parameter.grad, eager_gradients[name].grad, rtol=1e-5, atol=1e-6, msg=name)
