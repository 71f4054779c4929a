"""Every loader of a checkpoint refuses one whose unpickling runs code, unless --trust_checkpoint is given.

Loaders: decoding (bin.decode), inference (bin.asr_inference --asr_model_file), fine-tuning init
(bin.asr_train --pretrained_model), ESPnet's --init_param and --resume (bin.asr_train), unit
analysis (bin.analyze_units), and (tests/test_checkpoint_io.py) bin.import_fairseq. A refusal is one
error line naming the file and the flag, a non-zero exit and no traceback; the code never runs.
"""
import argparse

import numpy as np
import pytest
import soundfile
import torch
import yaml
from checkpoint_bombs import no_traceback, plant, write_bomb
from conftest import REPO_ROOT, run_module

from dinosr_espnet.asr.token_list import char_token_list, write_char_token_list
from dinosr_espnet.checkpoint_io import TRUST_FLAG, CheckpointError, UntrustedCheckpointError, checkpoint_trust
from dinosr_espnet.nets import DinoSRModel, dinosr_tiny

TINY_CONFIG = REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml"
TEXTS = ["THE CAT", "A DOG RAN", "HE IS HERE", "WE GO"]


def write_noise_data_dir(directory, texts):
    """wav.scp, text, utt2spk and stage 2's shape files for noise 'utterances' of 1-1.5 s."""
    directory.mkdir(parents=True)
    generator = np.random.default_rng(0)
    rows = []
    for index, text in enumerate(texts):
        utterance = f"spk-{index:02d}"
        samples = 16000 + 2000 * index
        soundfile.write(directory / f"{utterance}.wav", 0.1 * generator.standard_normal(samples), 16000,
                        subtype="PCM_16")
        rows.append((utterance, directory / f"{utterance}.wav", text, samples))
    vocabulary = len(char_token_list())
    tables = {"wav.scp": [f"{u} {p}" for u, p, _, _ in rows], "text": [f"{u} {t}" for u, _, t, _ in rows],
              "utt2spk": [f"{u} {u}" for u, _, _, _ in rows], "speech_shape": [f"{u} {n}" for u, _, _, n in rows],
              "text_shape.char": [f"{u} {len(t)},{vocabulary}" for u, _, t, _ in rows]}
    for name, lines in tables.items():
        (directory / name).write_text("".join(line + "\n" for line in sorted(lines)))
    return directory


def write_pretraining_dir(directory, state=None):
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if state is None:
        state = {f"ssl.{key}": value for key, value in DinoSRModel(dinosr_tiny()).state_dict().items()}
    torch.save(state, directory / "model.pth")
    (directory / "config.yaml").write_text(yaml.safe_dump({"model": "dinosr", "model_conf": dinosr_tiny().to_dict()}))
    return directory / "model.pth"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A data dir, token list, pre-training dir and a fine-tuned-style ASR model (config.yaml + model.pth)."""
    import dinosr_espnet  # noqa: F401
    from dinosr_espnet.registry import register_now

    register_now()
    from espnet2.tasks.asr import ASRTask

    root = tmp_path_factory.mktemp("untrusted")
    data = write_noise_data_dir(root / "data", TEXTS)
    tokens = write_char_token_list(root / "tokens.txt")
    pretrained = write_pretraining_dir(root / "pretrain")
    asr_dir = root / "asr"
    asr_dir.mkdir()
    args = ASRTask.get_parser().parse_args(["--config", str(TINY_CONFIG), "--token_list", str(tokens),
                                            "--output_dir", str(asr_dir)])
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    (asr_dir / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    state = model.state_dict()
    torch.save(state, asr_dir / "model.pth")
    return {"root": root, "data": data, "tokens": tokens, "pretrained": pretrained, "asr_dir": asr_dir,
            "asr_state": state}


def assert_refused(process, path, marker):
    output = process.stdout + process.stderr
    assert process.returncode != 0, output[-3000:]
    assert str(path) in output and TRUST_FLAG in output, output[-3000:]
    assert no_traceback(process), output[-3000:]
    assert not marker.exists()


def train_options(setup, output_dir, *extra):
    data = setup["data"]
    options = ["--config", str(TINY_CONFIG), "--output_dir", str(output_dir), "--token_list", str(setup["tokens"]),
               "--ngpu", "0", "--max_epoch", "1", "--num_iters_per_epoch", "1"]
    for split in ("train", "valid"):
        options += [f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                    f"--{split}_data_path_and_name_and_type", f"{data}/text,text,text",
                    f"--{split}_shape_file", f"{data}/speech_shape", f"--{split}_shape_file", f"{data}/text_shape.char"]
    return options + list(extra)


def planted_asr_model(setup, name):
    marker = setup["root"] / f"{name}.ran"
    path = write_bomb(setup["root"] / name / "model.pth", plant(setup["asr_state"], marker, "ctc.ctc_lo.bias"),
                      marker)
    return path, marker


# --- the command lines --------------------------------------------------------------------------

@pytest.mark.slow
def test_asr_inference_refuses_then_trusts(setup, tmp_path):
    model_file, marker = planted_asr_model(setup, "inference")
    common = ["--asr_train_config", str(setup["asr_dir"] / "config.yaml"), "--asr_model_file", str(model_file),
              "--data_dir", str(setup["data"]), "--output_dir", str(tmp_path / "out"), "--device", "cpu"]
    assert_refused(run_module("dinosr_espnet.bin.asr_inference", *common, check=False), model_file, marker)
    assert not (tmp_path / "out" / "1best_recog" / "text").exists()
    run_module("dinosr_espnet.bin.asr_inference", *common, TRUST_FLAG)
    assert marker.exists() and (tmp_path / "out" / "1best_recog" / "text").is_file()


@pytest.mark.slow
def test_decode_refuses(setup, tmp_path):
    model_file, marker = planted_asr_model(setup, "decode")
    process = run_module("dinosr_espnet.bin.decode", "--asr_train_config", str(setup["asr_dir"] / "config.yaml"),
                         "--asr_model_file", str(model_file), "--test_sets", str(setup["data"]),
                         "--output_dir", str(tmp_path / "decode"), "--device", "cpu", check=False)
    assert_refused(process, model_file, marker)


@pytest.mark.slow
def test_finetuning_init_refuses_a_code_running_pretrained_model(setup, tmp_path):
    marker = tmp_path / "ran"
    state = {f"ssl.{key}": value for key, value in DinoSRModel(dinosr_tiny()).state_dict().items()}
    pretrained = write_pretraining_dir(tmp_path / "pretrain", plant(state, marker, "ssl.student.mask_emb"))
    process = run_module("dinosr_espnet.bin.asr_train",
                         *train_options(setup, tmp_path / "exp", "--pretrained_model", str(pretrained)), check=False)
    assert_refused(process, pretrained, marker)


@pytest.mark.slow
def test_init_param_refuses(setup, tmp_path):
    model_file, marker = planted_asr_model(setup, "init_param")
    process = run_module("dinosr_espnet.bin.asr_train",
                         *train_options(setup, tmp_path / "exp", "--init_param", str(model_file)), check=False)
    assert_refused(process, model_file, marker)


@pytest.mark.slow
def test_resume_refuses_a_code_running_checkpoint(setup, tmp_path):
    marker = tmp_path / "ran"
    checkpoint = write_bomb(tmp_path / "exp" / "checkpoint.pth",
                            {"model": plant(setup["asr_state"], marker, "ctc.ctc_lo.bias"), "reporter": {},
                             "optimizers": [], "schedulers": [], "scaler": None}, marker)
    process = run_module("dinosr_espnet.bin.asr_train",
                         *train_options(setup, tmp_path / "exp", "--resume", "true"), check=False)
    assert_refused(process, checkpoint, marker)


def test_analyze_units_refuses(setup, tmp_path):
    marker = tmp_path / "ran"
    state = {f"ssl.{key}": value for key, value in DinoSRModel(dinosr_tiny()).state_dict().items()}
    pretrained = write_pretraining_dir(tmp_path / "pretrain", plant(state, marker))
    process = run_module("dinosr_espnet.bin.analyze_units", "--model_dir", str(pretrained.parent),
                         "--data_dir", str(setup["data"]), "--output_dir", str(tmp_path / "units"), check=False)
    assert_refused(process, pretrained, marker)


# --- the same loaders with trust (in-process: the flag opens these scopes) ------------------------

def test_finetuning_init_with_trust_loads(setup, tmp_path):
    from dinosr_espnet.asr.encoder import DinoSREncoder

    marker = tmp_path / "ran"
    state = {f"ssl.{key}": value for key, value in DinoSRModel(dinosr_tiny()).state_dict().items()}
    pretrained = write_pretraining_dir(tmp_path / "pretrain", plant(state, marker, "ssl.student.mask_emb"))
    with pytest.raises(UntrustedCheckpointError):
        DinoSREncoder(pretrained_model=str(pretrained))
    assert not marker.exists()
    with checkpoint_trust(True):
        encoder = DinoSREncoder(pretrained_model=str(pretrained))
    assert marker.exists() and torch.equal(encoder.student.mask_emb, torch.zeros(64))


def test_espnet_resume_and_init_param_with_trust_load(setup, tmp_path):
    from espnet2.tasks import abs_task
    from espnet2.train.reporter import Reporter
    from espnet2.train.trainer import Trainer

    from dinosr_espnet.tasks.checkpoint import safe_torch_loads

    model_file, marker = planted_asr_model(setup, "trusted_init")
    from espnet2.tasks.asr import ASRTask

    config = argparse.Namespace(**yaml.safe_load((setup["asr_dir"] / "config.yaml").read_text()))
    model = ASRTask.build_model(config)
    with safe_torch_loads(trust=True):
        abs_task.load_pretrained_model(init_param=str(model_file), model=model, ignore_init_mismatch=False)
    assert marker.exists() and torch.equal(model.ctc.ctc_lo.bias, torch.zeros_like(model.ctc.ctc_lo.bias))

    marker.unlink()
    optimizer = torch.optim.Adam(model.parameters())
    checkpoint = write_bomb(tmp_path / "checkpoint.pth",
                            {"model": plant(setup["asr_state"], marker, "ctc.ctc_lo.bias"),
                             "reporter": Reporter().state_dict(), "optimizers": [optimizer.state_dict()],
                             "schedulers": [None], "scaler": None}, marker)
    with safe_torch_loads(trust=False):
        with pytest.raises(UntrustedCheckpointError):
            Trainer.resume(checkpoint, model, Reporter(), [optimizer], [None], None, 0)
    assert not marker.exists()
    with safe_torch_loads(trust=True):
        Trainer.resume(checkpoint, model, Reporter(), [optimizer], [None], None, 0)
    assert marker.exists()


def test_analysis_model_loading_with_trust_loads(setup, tmp_path):
    from dinosr_espnet.analysis.model_loading import load_model

    marker = tmp_path / "ran"
    state = {f"ssl.{key}": value for key, value in DinoSRModel(dinosr_tiny()).state_dict().items()}
    pretrained = write_pretraining_dir(tmp_path / "pretrain", plant(state, marker))
    with pytest.raises(UntrustedCheckpointError):
        load_model(pretrained.parent)
    load_model(pretrained.parent, trust_checkpoint=True)
    assert marker.exists()


def test_unrelated_state_dict_does_not_decode(setup, tmp_path):
    """A harmless but unrelated state dict is an error naming the keys (ESPnet: strict=False, garbage)."""
    from dinosr_espnet.decode.emissions import load_asr_model

    unrelated = tmp_path / "unrelated.pth"
    torch.save({"decoder.embed.weight": torch.zeros(3, 3)}, unrelated)
    with pytest.raises(CheckpointError) as error:
        load_asr_model(setup["asr_dir"] / "config.yaml", unrelated)
    message = str(error.value)
    assert str(unrelated) in message and "ctc.ctc_lo.weight" in message and "decoder.embed.weight" in message
    model, tokens = load_asr_model(setup["asr_dir"] / "config.yaml", setup["asr_dir"] / "model.pth")
    assert tokens == char_token_list()
