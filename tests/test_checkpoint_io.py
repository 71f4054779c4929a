"""checkpoint_io / atomic_files / tasks.checkpoint: safe loading, strict matching, atomic and ordered saves."""
import argparse
import os
import sys

import pytest
import torch
import yaml
from checkpoint_bombs import CodeRunningTensor, no_traceback, plant, write_bomb
from conftest import run_module

from dinosr_espnet.atomic_files import atomic_open, atomic_write_text, remove_stale_temporaries
from dinosr_espnet.checkpoint_io import (TRUST_FLAG, CheckpointError, UntrustedCheckpointError,
                                         checkpoint_trust, load_checkpoint, load_state_dict_strictly,
                                         save_checkpoint)
from dinosr_espnet.nets import DinoSRModel, dinosr_tiny, dinosr_to_fairseq


def test_code_running_pickle_is_refused_naming_the_file_and_the_flag(tmp_path):
    marker = tmp_path / "ran"
    path = write_bomb(tmp_path / "model.pth", {"w": torch.ones(2), "x": CodeRunningTensor(marker, (3,))}, marker)
    with pytest.raises(UntrustedCheckpointError) as refused:
        load_checkpoint(path)
    assert str(path) in str(refused.value) and TRUST_FLAG in str(refused.value)
    assert "types builtins.eval" in str(refused.value)  # names what it refused
    assert not marker.exists()


def test_trust_loads_the_whole_pickle(tmp_path):
    marker = tmp_path / "ran"
    path = write_bomb(tmp_path / "model.pth", {"x": CodeRunningTensor(marker, (3,))}, marker)
    assert torch.equal(load_checkpoint(path, trust=True)["x"], torch.zeros(3))
    assert marker.exists()
    marker.unlink()
    with checkpoint_trust(True):  # the scope a command's --trust_checkpoint opens
        load_checkpoint(path)
    assert marker.exists()


def test_truncated_and_missing_checkpoints_are_named(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_checkpoint(tmp_path / "missing.pth")


def test_unrelated_state_dict_is_an_error_naming_keys():
    module = torch.nn.Linear(2, 3)
    with pytest.raises(CheckpointError) as error:
        load_state_dict_strictly(module, {"weight": torch.zeros(3, 2), "other.bias": torch.zeros(1)}, "x.pth")
    message = str(error.value)
    assert "x.pth" in message and "lacks: bias" in message and "does not have: other.bias" in message
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(2, 2\) vs model \(3, 2\)"):
        load_state_dict_strictly(module, {"weight": torch.zeros(2, 2), "bias": torch.zeros(3)}, "x.pth")


def _official_checkpoint(path, omegaconf_cfg: bool = True, bomb_marker=None):
    """The official dinosr.ckpt layout: fairseq keys under 'model', a hydra/omegaconf 'cfg' as fairseq
    saves it (OmegaConf.create of the resolved container, struct flag set), optimizer_history."""
    from omegaconf import OmegaConf

    config = dinosr_tiny()
    torch.manual_seed(3)
    model_state = dinosr_to_fairseq(DinoSRModel(config).state_dict())
    cfg = {"_name": None,
           "common": {"fp16": True, "log_interval": 200, "seed": 1337},
           "optimization": {"max_update": 400000, "lr": [0.0005], "update_freq": [1]},
           "model": {"_name": "dinosr", "encoder_attention_heads": config.encoder_attention_heads,
                     "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2",
                     "conv_pos": config.conv_pos, "conv_pos_groups": config.conv_pos_groups,
                     "pos_conv_depth": config.pos_conv_depth, "mask_prob": 0.8, "discrete": True,
                     "codebook_init_decay": 0.9, "extractor_mode": "layer_norm", "layer_norm_target_layer": False},
           "task": {"_name": "audio_pretraining", "data": "/data/manifest", "normalize": True}}
    if omegaconf_cfg:
        cfg = OmegaConf.create(cfg)
        OmegaConf.set_struct(cfg, True)
    if bomb_marker is not None:
        model_state = plant(model_state, bomb_marker, "mask_emb")
    content = {"args": None, "cfg": cfg, "model": model_state, "criterion": None,
               "optimizer_history": [{"criterion_name": "ModelCriterion", "optimizer_name": "FairseqAdam",
                                      "lr_scheduler_state": {"best": None}, "num_updates": 400000}],
               "task_state": {}, "extra_state": {"epoch": 51, "train_iterator": {"epoch": 51}}}
    torch.save(content, path)
    return path


def test_official_layout_with_omegaconf_cfg_imports_without_unpickling_code(tmp_path, monkeypatch):
    from omegaconf import DictConfig

    from dinosr_espnet.bin.import_fairseq import import_checkpoint

    checkpoint = _official_checkpoint(tmp_path / "dinosr.ckpt")
    assert "omegaconf.dictconfig.DictConfig" in torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint)
    assert isinstance(torch.load(checkpoint, weights_only=False)["cfg"], DictConfig)
    loads = []
    real_load = torch.serialization.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch.serialization, "load", recording_load)
    summary = import_checkpoint(checkpoint, tmp_path / "official" / "model.pth")
    assert loads == [True]  # the allow-listed loader only: no full unpickling
    config = yaml.safe_load((tmp_path / "official" / "config.yaml").read_text())
    assert summary["num_updates"] == 400000 == config["num_updates"]
    assert config["model_conf"]["mask_prob"] == 0.8 and config["model_conf"]["encoder_layers"] == 3


def test_import_fairseq_refuses_code_and_trusts_only_with_the_flag(tmp_path):
    marker = tmp_path / "ran"
    checkpoint = _official_checkpoint(tmp_path / "dinosr.ckpt", bomb_marker=marker)
    output = tmp_path / "official" / "model.pth"
    refused = run_module("dinosr_espnet.bin.import_fairseq", str(checkpoint), str(output), check=False)
    assert refused.returncode == 1 and no_traceback(refused), refused.stderr
    assert str(checkpoint) in refused.stderr and TRUST_FLAG in refused.stderr
    assert not marker.exists() and not output.exists()
    trusted = run_module("dinosr_espnet.bin.import_fairseq", str(checkpoint), str(output), TRUST_FLAG)
    assert marker.exists() and output.is_file(), trusted.stderr


def test_atomic_write_failing_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "text"
    atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["text"]


def test_checkpoint_pth_is_renamed_into_place_only_when_committed(tmp_path):
    from dinosr_espnet.tasks.checkpoint import atomic_torch_saves, commit_pending_checkpoint

    checkpoint, epoch = tmp_path / "checkpoint.pth", tmp_path / "2epoch.pth"
    save_checkpoint({"epoch": 1}, checkpoint)
    with atomic_torch_saves(defer_resume_checkpoint=True):
        torch.save({"epoch": 2}, checkpoint)  # ESPnet's order: checkpoint.pth first ...
        torch.save({"w": torch.ones(1)}, epoch)  # ... then the epoch's model file
        assert torch.load(checkpoint) == {"epoch": 1} and epoch.is_file()
        commit_pending_checkpoint()
        assert torch.load(checkpoint) == {"epoch": 2}
        torch.save({"epoch": 3}, checkpoint)
    # never committed (the run stopped before the epoch was complete): the last good one stays
    assert torch.load(checkpoint) == {"epoch": 2}
    assert remove_stale_temporaries(tmp_path) == 0 and sorted(p.name for p in tmp_path.iterdir()) == \
        ["2epoch.pth", "checkpoint.pth"]


def test_torch_load_in_an_espnet_scope_follows_the_policy(tmp_path):
    from dinosr_espnet.tasks.checkpoint import safe_torch_loads

    marker = tmp_path / "ran"
    path = write_bomb(tmp_path / "checkpoint.pth", {"x": CodeRunningTensor(marker)}, marker)
    with safe_torch_loads(trust=False):
        with pytest.raises(UntrustedCheckpointError, match=TRUST_FLAG):
            torch.load(path, map_location="cpu", weights_only=False)  # what ESPnet asks for
    assert not marker.exists()
    with safe_torch_loads(trust=True):
        torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists() and torch.load is torch.serialization.load


def test_conf_options_parse_yaml_without_constructing_objects(tmp_path):
    from espnet2.utils.nested_dict_action import NestedDictAction

    from dinosr_espnet.tasks.conf_options import safe_conf_options

    safe_conf_options()
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder_conf", action=NestedDictAction, default={})
    assert parser.parse_args(["--encoder_conf", "a.b=[1, 2]", "--encoder_conf", "{'c': 3}"]).encoder_conf == \
        {"a": {"b": [1, 2]}, "c": 3}
    marker = tmp_path / "ran"
    with pytest.raises(SystemExit):
        parser.parse_args(["--encoder_conf", f"x=!!python/object/apply:os.system ['touch {marker}']"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--encoder_conf", f"__import__('os').system('touch {marker}')"])
    assert not marker.exists()
