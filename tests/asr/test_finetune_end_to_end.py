"""A tiny pre-trained DinoSR fine-tunes with CTC through the stock ESPnet trainer and decodes.

Data: a dozen flite sentences (the synthetic corpus' own synthesizer), a Kaldi-style data dir with
ESPnet shape files, the char token list; a tiny pre-training checkpoint written from DinoSRModel.
"""
import re
import tempfile
from pathlib import Path

import pytest
import soundfile
import torch
import yaml

from conftest import REPO_ROOT, run_module
from dinosr_espnet.asr.token_list import char_token_list, write_char_token_list
from dinosr_espnet.data.tts import BASE_VOICES, synthesize_flite
from dinosr_espnet.nets import DinoSRModel, dinosr_tiny

SENTENCES = ["THE CAT SAT ON THE MAT", "A DOG RAN IN THE PARK", "SHE SAW THE RED SUN", "IT'S A GOOD DAY",
             "WE GO HOME NOW", "THE MAN HAS A HAT", "I LIKE TO READ", "HE IS NOT HERE",
             "THE BIRD CAN SING", "LET US WALK TO TOWN", "MY FRIEND IS KIND", "THE SKY IS BLUE"]


def write_data_dir(directory: Path, voice: str, sentences) -> None:
    """wav.scp, text, utt2spk and the shape files stage 2 writes (speech_shape, text_shape.char)."""
    (directory / "wav").mkdir(parents=True)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for index, text in enumerate(sentences):
            audio, _ = synthesize_flite(BASE_VOICES[voice], text, 1.0, work_dir)
            utterance = f"{voice}-{index:03d}"
            path = directory / "wav" / f"{utterance}.wav"
            soundfile.write(path, audio, 16000, subtype="PCM_16")
            rows.append((utterance, path, text, len(audio)))
    vocabulary = len(char_token_list())
    tables = {"wav.scp": [f"{u} {p}" for u, p, _, _ in rows], "text": [f"{u} {t}" for u, _, t, _ in rows],
              "utt2spk": [f"{u} {u}" for u, _, _, _ in rows],
              "speech_shape": [f"{u} {n}" for u, _, _, n in rows],
              "text_shape.char": [f"{u} {len(t)},{vocabulary}" for u, _, t, _ in rows]}
    for name, lines in tables.items():
        (directory / name).write_text("".join(line + "\n" for line in sorted(lines)))


def data_options(split: str, directory: Path):
    return [f"--{split}_data_path_and_name_and_type", f"{directory}/wav.scp,speech,sound",
            f"--{split}_data_path_and_name_and_type", f"{directory}/text,text,text",
            f"--{split}_shape_file", f"{directory}/speech_shape",
            f"--{split}_shape_file", f"{directory}/text_shape.char"]


@pytest.mark.slow
def test_tiny_pretrained_model_finetunes_with_espnet_trainer_and_decodes(tmp_path):
    write_data_dir(tmp_path / "train", "flite_slt", SENTENCES)
    write_data_dir(tmp_path / "dev", "flite_rms", SENTENCES[:3])
    token_list = write_char_token_list(tmp_path / "token_list" / "char" / "tokens.txt")
    torch.manual_seed(0)
    pretrained = DinoSRModel(dinosr_tiny())
    (tmp_path / "pretrain").mkdir()
    torch.save({f"ssl.{key}": value for key, value in pretrained.state_dict().items()},
               tmp_path / "pretrain" / "model.pth")
    (tmp_path / "pretrain" / "config.yaml").write_text(
        yaml.safe_dump({"model": "dinosr", "model_conf": dinosr_tiny().to_dict()}))

    exp = tmp_path / "exp"
    training = run_module(
        "dinosr_espnet.bin.asr_train", "--config", str(REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml"),
        "--output_dir", str(exp), "--token_list", str(token_list), "--ngpu", "0", "--seed", "1",
        *data_options("train", tmp_path / "train"), *data_options("valid", tmp_path / "dev"),
        "--pretrained_model", str(tmp_path / 'pretrain' / 'model.pth'), timeout=600)
    log = training.stdout + training.stderr
    assert "student weights loaded from" in log
    losses = [float(value) for value in re.findall(r"epoch results: \[train\].*? loss_ctc=([0-9.]+)", log)]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert re.search(r"\[valid\].*? cer_ctc=[0-9.]+", log), "ESPnet reported no valid cer_ctc"
    best = exp / "valid.cer_ctc.best.pth"
    assert best.is_file()

    # after training the CNN is the pre-trained one and the Transformer moved after the freeze
    config = yaml.safe_load((REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml").read_text())
    state = torch.load(exp / "latest.pth", map_location="cpu")
    student = pretrained.student.state_dict()
    updates = config["max_epoch"] * config["num_iters_per_epoch"] // config["accum_grad"]
    assert int(state["encoder.num_updates"]) == updates > config["encoder_conf"]["freeze_finetune_updates"]
    for key, value in student.items():
        if key.startswith("feature_extractor."):
            assert torch.equal(state[f"encoder.student.{key}"], value), key
    assert not torch.equal(state["encoder.student.encoder.layers.0.feed_forward.fc1.weight"],
                           student["encoder.layers.0.feed_forward.fc1.weight"])

    decoding = run_module("dinosr_espnet.bin.asr_inference", "--asr_train_config", str(exp / "config.yaml"),
                          "--asr_model_file", str(best), "--data_dir", str(tmp_path / "dev"),
                          "--output_dir", str(exp / "greedy_dev"), timeout=600)
    hypotheses = (exp / "greedy_dev" / "1best_recog" / "text").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in hypotheses] == \
        [line.split(" ", 1)[0] for line in (tmp_path / "dev" / "text").read_text().splitlines()], decoding.stdout
