import pytest
import torch
import yaml
from conftest import run_module
from nets_test_utils import deterministic_tiny

from dinosr_espnet.nets import DinoSRModel, dinosr_base, dinosr_tiny, dinosr_to_fairseq, fairseq_to_dinosr
from dinosr_espnet.nets.fairseq_checkpoint import check_state_against


def official_base_keys():
    """The official checkpoint's ``model`` keys, written out from the spec (section 7)."""
    keys = {"mask_emb", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight", "post_extract_proj.bias",
            "encoder.layer_norm.weight", "encoder.layer_norm.bias", "_ema"}
    for i in range(7):
        keys |= {f"feature_extractor.conv_layers.{i}.0.weight", f"feature_extractor.conv_layers.{i}.2.1.weight",
                 f"feature_extractor.conv_layers.{i}.2.1.bias"}
    for i in range(5):
        keys |= {f"encoder.pos_conv.{i}.0.weight", f"encoder.pos_conv.{i}.0.bias"}
    for i in range(12):
        for module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                       "self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            keys |= {f"encoder.layers.{i}.{module}.weight", f"encoder.layers.{i}.{module}.bias"}
    for i in range(8):
        keys |= {f"heads.{i}.weight", f"heads.{i}.bias", f"_codebook{i}", f"_codebook_cnts{i}"}
    return keys


@pytest.fixture(scope="module")
def base_model():
    with torch.device("meta"):
        return DinoSRModel(dinosr_base())


def test_base_parameter_counts_match_the_spec(base_model):
    student = sum(p.numel() for p in base_model.student.parameters())
    heads = sum(p.numel() for p in base_model.heads.parameters())
    teacher = sum(p.numel() for p in base_model.teacher.parameters())
    assert round(student / 1e6, 2) == 93.16
    assert round(heads / 1e6, 2) == 1.57
    assert round(teacher / 1e6, 2) == 88.56


def test_base_model_has_the_official_checkpoint_key_set(base_model):
    fairseq = dinosr_to_fairseq(base_model.state_dict())
    assert set(fairseq) == official_base_keys()
    encoder_keys = {k[len("encoder."):] for k in fairseq if k.startswith("encoder.")}
    assert set(fairseq["_ema"]) == encoder_keys
    assert tuple(fairseq["_codebook3"].shape) == (256, 768) and tuple(fairseq["_codebook_cnts3"].shape) == (256,)


def test_state_dict_round_trips_through_the_official_layout():
    model = DinoSRModel(deterministic_tiny())
    model.on_optimizer_step()
    state = model.state_dict()
    back = fairseq_to_dinosr(dinosr_to_fairseq(state), num_updates=1)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_unknown_and_missing_keys_are_listed():
    fairseq = dinosr_to_fairseq(DinoSRModel(deterministic_tiny()).state_dict())
    fairseq["encoder.mystery.weight"] = torch.zeros(1)
    with pytest.raises(KeyError, match="encoder.mystery.weight"):
        fairseq_to_dinosr(fairseq)
    del fairseq["encoder.mystery.weight"]
    del fairseq["_ema"]["layers.1.fc2.bias"]
    del fairseq["_codebook_cnts1"]
    with pytest.raises(KeyError) as error:
        fairseq_to_dinosr(fairseq)
    assert "_ema[layers.1.fc2.bias]" in str(error.value) and "_codebook_cnts1" in str(error.value)
    state = fairseq_to_dinosr(dinosr_to_fairseq(DinoSRModel(deterministic_tiny()).state_dict()))
    del state["student.encoder.layers.0.feed_forward.fc1.bias"]
    with pytest.raises(KeyError, match="student.encoder.layers.0.feed_forward.fc1.bias"):
        check_state_against(state, DinoSRModel(deterministic_tiny()).state_dict(), "test")


def synthetic_official_checkpoint(path, config):
    """Random tensors in every key of the official layout, saved as a fairseq-style dict."""
    generator = torch.Generator().manual_seed(0)
    layout = dinosr_to_fairseq(DinoSRModel(config).state_dict())

    def randomise(name, tensor):
        values = torch.randn(tensor.shape, generator=generator)
        return values.abs() + 0.5 if name.startswith("_codebook_cnts") else values

    model = {name: randomise(name, value) for name, value in layout.items() if name != "_ema"}
    model["_ema"] = {name: randomise(name, value) for name, value in layout["_ema"].items()}
    cfg_model = {"_name": "dinosr", "encoder_attention_heads": config.encoder_attention_heads,
                 "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2",
                 "conv_pos": config.conv_pos, "conv_pos_groups": config.conv_pos_groups,
                 "codebook_init_decay": 0.9, "mask_prob": 0.8, "discrete": True}
    torch.save({"cfg": {"model": cfg_model}, "model": model, "optimizer_history": [{"num_updates": 1234}]}, path)
    return model


def test_import_cli_round_trips_a_synthetic_official_checkpoint_bit_exactly(tmp_path):
    config = dinosr_tiny(encoder_layers=3, average_top_k_layers=3)
    original = synthetic_official_checkpoint(tmp_path / "dinosr.ckpt", config)
    output = tmp_path / "exp" / "pretrain_official" / "model.pth"
    run_module("dinosr_espnet.bin.import_fairseq", str(tmp_path / "dinosr.ckpt"), str(output))
    written = torch.load(output)
    assert all(key.startswith("ssl.") for key in written)
    state = {key[len("ssl."):]: value for key, value in written.items()}
    assert int(state["num_updates_buffer"]) == 1234
    back = dinosr_to_fairseq(state)
    assert back.keys() == original.keys() and back["_ema"].keys() == original["_ema"].keys()
    assert all(torch.equal(back[k], original[k]) for k in original if k != "_ema")
    assert all(torch.equal(back["_ema"][k], original["_ema"][k]) for k in original["_ema"])
    document = yaml.safe_load((output.parent / "config.yaml").read_text())
    assert document["model"] == "dinosr"
    assert document["model_conf"]["encoder_layers"] == 3 and document["model_conf"]["codebook_size"] == 16
    model = DinoSRModel(type(config).from_dict(document["model_conf"]))
    model.load_state_dict(state)  # strict
    assert torch.equal(model.codebooks.codewords()[0], original["_codebook0"] / original["_codebook_cnts0"][:, None])
    assert not list(output.parent.glob(".*.tmp"))


def test_import_cli_fails_naming_unknown_keys(tmp_path):
    config = dinosr_tiny()
    model = synthetic_official_checkpoint(tmp_path / "dinosr.ckpt", config)
    model["encoder.extra_thing.weight"] = torch.zeros(2)
    torch.save({"cfg": {"model": {"_name": "dinosr", "encoder_attention_heads": 4}}, "model": model},
               tmp_path / "bad.ckpt")
    result = run_module("dinosr_espnet.bin.import_fairseq", str(tmp_path / "bad.ckpt"),
                        str(tmp_path / "out" / "model.pth"), check=False)
    assert result.returncode == 1 and "encoder.extra_thing.weight" in result.stderr
    assert not (tmp_path / "out" / "model.pth").exists()


def _tiny_official_state():
    return dinosr_to_fairseq(DinoSRModel(dinosr_tiny()).state_dict())


def test_config_with_unimplemented_fields_is_refused_listing_every_field():
    from dinosr_espnet.nets.config import DinoSRConfig
    from dinosr_espnet.nets.fairseq_checkpoint import config_from_fairseq

    cfg = {"_name": "dinosr", "encoder_attention_heads": 4, "layer_type": "conformer", "discrete": False,
           "codebook_init_decay": 0.9, "codebook_end_decay": 0.99, "layer_norm_first": True}
    with pytest.raises(ValueError) as error:
        config_from_fairseq(cfg, _tiny_official_state())
    message = str(error.value)
    assert "layer_type: 'conformer'" in message and "discrete: False" in message
    assert "codebook_end_decay" in message
    if "layer_norm_first" not in DinoSRConfig.__dataclass_fields__:
        assert "layer_norm_first: True" in message
    # The official values pass.
    official = {"_name": "dinosr", "encoder_attention_heads": 4, "layer_type": "transformer", "discrete": True,
                "extractor_mode": "layer_norm", "layer_norm_first": False, "codebook_init_decay": 0.9,
                "codebook_end_decay": 0.9, "mask_channel_prob": 0, "dropout_features": 0.0}
    assert config_from_fairseq(official, _tiny_official_state()).codebook_decay == 0.9


def test_task_normalize_is_read():
    from dinosr_espnet.nets.fairseq_checkpoint import config_from_fairseq

    cfg = {"_name": "dinosr", "encoder_attention_heads": 4}
    assert config_from_fairseq(cfg, _tiny_official_state(), task_config={"normalize": False}).normalize_waveform is False
    assert config_from_fairseq(cfg, _tiny_official_state(), task_config={"normalize": True}).normalize_waveform is True


def test_ema_end_decay_one_after_the_freeze_is_the_freeze_mark():
    from dinosr_espnet.nets.fairseq_checkpoint import config_from_fairseq

    cfg = {"_name": "dinosr", "encoder_attention_heads": 4, "ema_end_decay": 1.0, "freeze_teacher_step": 200001}
    notes = []
    after = config_from_fairseq(cfg, _tiny_official_state(), num_updates=250000, notes=notes)
    assert after.ema_end_decay == 0.9999 and len(notes) == 1 and "1.0" in notes[0]
    # Before the freeze step a 1.0 is a configured schedule and is kept.
    assert config_from_fairseq(cfg, _tiny_official_state(), num_updates=1000).ema_end_decay == 1.0


def test_import_cli_refuses_an_unimplemented_config_and_writes_nothing(tmp_path):
    model = synthetic_official_checkpoint(tmp_path / "dinosr.ckpt", dinosr_tiny())
    torch.save({"cfg": {"model": {"_name": "dinosr", "encoder_attention_heads": 4, "layer_type": "conformer"},
                        "task": {"normalize": True}}, "model": model}, tmp_path / "conformer.ckpt")
    result = run_module("dinosr_espnet.bin.import_fairseq", str(tmp_path / "conformer.ckpt"),
                        str(tmp_path / "out" / "model.pth"), check=False)
    assert result.returncode == 1 and "layer_type" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
