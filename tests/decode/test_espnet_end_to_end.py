"""Emissions, greedy inference and stage 6 with a tiny randomly initialised ESPnet CTC model."""
import json

import numpy as np
import pytest
import soundfile
import yaml
from conftest import run_module
from decode_fixtures import TOKENS, build_test_lm, write_data_dir, write_token_list

UTT_IDS = ["spk2-b", "spk1-c", "spk1-a", "spk3-d", "spk2-a"]  # unsorted; lengths differ to exercise batching
SECONDS = [1.3, 0.6, 2.0, 0.9, 1.6]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """config.yaml + model.pth of a 1-block transformer CTC model built through ASRTask, and a data dir."""
    import torch

    import dinosr_espnet  # noqa: F401
    from dinosr_espnet.registry import register_now

    register_now()
    from espnet2.tasks.asr import ASRTask

    directory = tmp_path_factory.mktemp("tiny_asr")
    args = ASRTask.get_parser().parse_args([
        "--output_dir", str(directory), "--encoder", "transformer", "--encoder_conf", "output_size=16",
        "--encoder_conf", "attention_heads=2", "--encoder_conf", "linear_units=32", "--encoder_conf", "num_blocks=1",
        # linear input layer: conv2d subsampling computes padded lengths differently in a batch (ESPnet quirk)
        "--encoder_conf", "input_layer=linear",
        "--decoder", "None", "--model_conf", "ctc_weight=1.0", "--frontend_conf", "n_mels=20"])
    args.token_list = TOKENS
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    (directory / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), directory / "model.pth")
    generator = np.random.default_rng(0)
    wav_paths = []
    for utt, seconds in zip(UTT_IDS, SECONDS):
        path = directory / f"{utt}.flac"
        soundfile.write(path, (0.1 * generator.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        wav_paths.append(str(path))
    data_dir = write_data_dir(directory / "dump" / "dev_other", UTT_IDS, ["THE CAT"] * len(UTT_IDS), wav_paths)
    return {"dir": directory, "config": directory / "config.yaml", "model": directory / "model.pth", "data": data_dir}


def test_batched_emissions_match_one_by_one_and_keep_order(tiny_model):
    from dinosr_espnet.data.kaldi_data import read_data_dir
    from dinosr_espnet.decode.emissions import compute_emissions, load_asr_model

    model, token_list = load_asr_model(tiny_model["config"], tiny_model["model"])
    assert token_list == TOKENS
    data_dir = read_data_dir(tiny_model["data"])
    batched = compute_emissions(model, token_list, data_dir, batch_size=3, log=lambda *_: None)
    single = compute_emissions(model, token_list, data_dir, batch_size=1, log=lambda *_: None)
    assert batched.utt_ids == UTT_IDS
    # every utterance has a distinct length, so equal shapes below also prove the pairing of ids and rows
    lengths = [len(x) for x in batched.log_probs]
    assert np.argmax(lengths) == UTT_IDS.index("spk1-a") and np.argmin(lengths) == UTT_IDS.index("spk1-c")
    for one, other in zip(batched.log_probs, single.log_probs):
        assert one.shape == other.shape and one.shape[1] == len(TOKENS)
        np.testing.assert_allclose(np.exp(one).sum(axis=1), 1.0, atol=1e-4)
        # padding changes ESPnet's frontend a little (STFT edges, utterance MVN), never by much
        assert np.abs(one - other).mean() < 0.05


def test_asr_inference_writes_espnet_style_outputs_in_data_dir_order(tiny_model, tmp_path):
    run_module("dinosr_espnet.bin.asr_inference", "--asr_train_config", str(tiny_model["config"]),
               "--asr_model_file", str(tiny_model["model"]), "--output_dir", str(tmp_path),
               "--data_path_and_name_and_type", f"{tiny_model['data']}/wav.scp,speech,sound",
               "--batch_size", "2", "--device", "cpu")
    out = tmp_path / "1best_recog"
    for name in ("text", "token", "token_int", "score"):
        assert [line.split(" ", 1)[0] for line in (out / name).read_text().splitlines()] == UTT_IDS, name
    for token_line, int_line in zip((out / "token").read_text().splitlines(), (out / "token_int").read_text().splitlines()):
        assert token_line.split()[1:] == [TOKENS[int(i)] for i in int_line.split()[1:]]
    assert all(float(line.split()[1]) <= 0 for line in (out / "score").read_text().splitlines())


def test_stage6_decodes_with_a_real_model_and_reuses_emissions(tiny_model, tmp_path, repo_root):
    from dinosr_espnet.decode.decode_config import load_decode_config
    from dinosr_espnet.decode.pipeline import run_decoding

    lm = build_test_lm(tmp_path, write_token_list(tmp_path / "tokens.txt"))
    output = tmp_path / "decode"
    config = load_decode_config(repo_root / "conf" / "decode_tiny.yaml")
    arguments = (tiny_model["config"], tiny_model["model"], output, [tiny_model["data"]], config)
    run_decoding(*arguments, tune_set=tiny_model["data"], lexicon=lm.lexicon, lm=lm.arpa, device="cpu",
                 log=lambda *_: None)
    emissions_file = output / "dev_other" / "emissions.npz"
    stamp = emissions_file.stat().st_mtime_ns
    for mode in ("viterbi", "4gram"):
        text = (output / "dev_other" / mode / "text").read_text().splitlines()
        assert [line.split(" ", 1)[0] for line in text] == UTT_IDS
        assert "wer" in json.loads((output / "dev_other" / mode / "score.json").read_text())
    messages = []
    run_decoding(*arguments, tune_set=tiny_model["data"], lexicon=lm.lexicon, lm=lm.arpa, device="cpu",
                 log=messages.append)
    assert emissions_file.stat().st_mtime_ns == stamp
    assert any("reusing" in m for m in messages)
