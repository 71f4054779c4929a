"""analyze_units end to end on a tiny DinoSR model and a tiny data dir with frame_phones."""
import json

import numpy as np
import pytest
import soundfile
import torch
import yaml

from conftest import run_module
from dinosr_espnet.analysis.alignments import PHONES_IN_PHONETIC_ORDER, num_frames
from dinosr_espnet.bin import analyze_units, plot_units
from dinosr_espnet.nets import dinosr_tiny
from dinosr_espnet.nets.data2vec import Data2VecModel
from dinosr_espnet.nets.dinosr import DinoSRModel

METRICS = ("active_codewords", "code_perplexity", "cluster_purity", "phone_purity", "pnmi")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("units")
    config = dinosr_tiny()
    torch.manual_seed(0)
    for name, model_class in (("data2vec", Data2VecModel), ("dinosr", DinoSRModel)):
        model_dir = root / "exp" / f"pretrain_{name}"
        model_dir.mkdir(parents=True)
        state = model_class(config).state_dict()
        torch.save({f"ssl.{key}": value for key, value in state.items()}, model_dir / "model.pth")
        (model_dir / "config.yaml").write_text(yaml.safe_dump({"model": name, "model_conf": config.to_dict()}))
    (model_dir / "train.log").write_text(
        "[h] 2026 (trainer:1) INFO: 1epoch:train:1-5batch: loss=2.700, target_ppl=10.000, active_codewords=12.000\n"
        "[h] 2026 (trainer:1) INFO: 1epoch:train:6-10batch: loss=2.500, target_ppl=11.000, active_codewords=14.000\n")
    data_dir = root / "data" / "dev"
    (data_dir / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    wav_lines, phone_lines = [], []
    for index, samples in enumerate([16000, 12800, 14400, 16320]):
        utterance = f"spk-0-{index:04d}"
        path = data_dir / "wav" / f"{utterance}.wav"
        time_axis = np.arange(samples) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * index) * time_axis) + 0.05 * rng.standard_normal(samples)
        soundfile.write(path, audio.astype(np.float32), 16000)
        wav_lines.append(f"{utterance} {path}")
        phones = rng.choice(PHONES_IN_PHONETIC_ORDER[:8], size=num_frames(samples))
        phone_lines.append(f"{utterance} {' '.join(phones)}")
    (data_dir / "wav.scp").write_text("\n".join(wav_lines) + "\n")
    (data_dir / "frame_phones").write_text("\n".join(phone_lines) + "\n")
    return root / "exp" / "pretrain_dinosr", data_dir, config


def _check_results(units, config, expected_layers):
    rows = units["results"]
    assert {(row["layer"], row["units"]) for row in rows} == {
        (layer, source) for layer in expected_layers for source in ("codebook", "head", "kmeans")}
    for row in rows:
        assert set(METRICS) <= set(row)
        assert 1 <= row["active_codewords"] <= row["codebook_size"] <= config.codebook_size
        assert 1.0 <= row["code_perplexity"] <= row["active_codewords"] + 1e-9
        for metric in ("cluster_purity", "phone_purity", "pnmi"):
            assert 0.0 <= row[metric] <= 1.0 + 1e-12, (row, metric)
        assert row["num_frames"] == units["num_frames"]


def test_analyze_units_trained_checkpoint_writes_table_json_and_pictures(tiny_setup, tmp_path):
    model_dir, data_dir, config = tiny_setup
    output = tmp_path / "units"
    # --kmeans_max_frames below the frame count exercises the fit-on-a-subset + second-pass assignment.
    run_module("dinosr_espnet.bin.analyze_units", "--model_dir", str(model_dir), "--data_dir", str(data_dir),
               "--output_dir", str(output), "--kmeans_clusters", "16", "--kmeans_max_frames", "120",
               "--device", "cpu")
    units = json.loads((output / "units.json").read_text())
    assert units["num_utterances"] == 4 and units["num_frames"] == 49 + 39 + 44 + 50
    assert units["random_init"] is False
    _check_results(units, config, expected_layers=[2, 3])
    assert units["kmeans"]["2"]["fit_frames"] < units["num_frames"]
    table = (output / "units.md").read_text()
    assert table.count("| online codebook |") == 2 and "| offline k-means |" in table
    for name in ("usage_layer2.png", "phone_unit_codebook_layer2.png", "phone_unit_head_layer2.png",
                 "phone_unit_kmeans_layer2.png", "training_curves.png"):
        assert (output / name).stat().st_size > 5000, name
    # plot_units redraws from the saved counts.
    replot = tmp_path / "replot"
    assert plot_units.main(["--units_dir", str(output), "--output_dir", str(replot), "--layers", "3"]) == 0
    assert (replot / "phone_unit_kmeans_layer3.png").is_file()


def test_analyze_units_random_init_on_one_layer(tiny_setup, tmp_path):
    model_dir, data_dir, config = tiny_setup
    output = tmp_path / "random"
    assert analyze_units.main(["--model_dir", str(model_dir), "--data_dir", str(data_dir), "--output_dir", str(output),
                               "--random_init", "--kmeans_clusters", "8", "--layers", "3", "--max_utterances", "3",
                               "--device", "cpu"]) == 0
    units = json.loads((output / "units.json").read_text())
    assert units["random_init"] is True and units["num_utterances"] == 3
    _check_results(units, config, expected_layers=[3])
    assert units["kmeans"]["3"]["fit_frames"] == units["num_frames"]


def test_data2vec_model_gets_the_kmeans_baseline_only(tiny_setup, tmp_path):
    model_dir, data_dir, config = tiny_setup
    output = tmp_path / "data2vec"
    assert analyze_units.main(["--model_dir", str(model_dir.parent / "pretrain_data2vec"), "--data_dir", str(data_dir),
                               "--output_dir", str(output), "--kmeans_clusters", "8", "--max_utterances", "2",
                               "--device", "cpu"]) == 0
    units = json.loads((output / "units.json").read_text())
    assert {(row["layer"], row["units"]) for row in units["results"]} == {(2, "kmeans"), (3, "kmeans")}
    assert all(0.0 <= row["pnmi"] <= 1.0 for row in units["results"])


def test_alignment_longer_than_model_output_is_an_error_naming_the_utterance(tiny_setup, tmp_path, capsys):
    model_dir, data_dir, _ = tiny_setup
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "wav.scp").write_text((data_dir / "wav.scp").read_text())
    lines = (data_dir / "frame_phones").read_text().splitlines()
    lines[1] += " sil sil sil"
    (broken / "frame_phones").write_text("\n".join(lines) + "\n")
    code = analyze_units.main(["--model_dir", str(model_dir), "--data_dir", str(broken), "--output_dir",
                               str(tmp_path / "out"), "--kmeans_clusters", "8", "--device", "cpu"])
    assert code == 1
    assert "'spk-0-0001'" in capsys.readouterr().err


def test_a_25_hz_log_mel_model_is_analysed_on_every_other_alignment_frame(tiny_setup, tmp_path):
    _, data_dir, _ = tiny_setup
    config = dinosr_tiny(frontend="fbank", fbank_num_mels=40, fbank_channels=4, fbank_time_strides=[2, 2])
    model_dir = tmp_path / "pretrain_fbank"
    model_dir.mkdir()
    torch.manual_seed(0)
    torch.save({f"ssl.{key}": value for key, value in DinoSRModel(config).state_dict().items()}, model_dir / "model.pth")
    (model_dir / "config.yaml").write_text(yaml.safe_dump({"model": "dinosr", "model_conf": config.to_dict()}))
    output = tmp_path / "units"
    assert analyze_units.main(["--model_dir", str(model_dir), "--data_dir", str(data_dir), "--output_dir", str(output),
                               "--kmeans_clusters", "8", "--device", "cpu"]) == 0
    units = json.loads((output / "units.json").read_text())
    # (N - 400) // 640 + 1 model frames for N = 16000, 12800, 14400, 16320 samples
    assert units["num_frames"] == 25 + 20 + 22 + 25
    _check_results(units, config, expected_layers=[2, 3])
