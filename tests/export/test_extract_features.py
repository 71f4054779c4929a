"""extract_features: units equal pre-training's assignments, features round-trip through kaldiio / .npy,
padded length-sorted batches change nothing, bad inputs are named without a traceback, nothing half-written."""
import json

import kaldiio
import numpy as np
import pytest
import torch
from conftest import run_module
from export_fixtures import (frames_of, listing, pretraining_assignments, read_audio, tiny_config,
                             trained_looking_model, write_audio_dir, write_pretraining_dir)

from dinosr_espnet.export.extraction import data_dir_inputs, extract
from dinosr_espnet.export.features import FeatureRequest, FeatureRequestError

LENGTHS = [24000, 17000, 30000, 9000, 12500, 17000]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    model = trained_looking_model(tiny_config(), seed=1)
    model_dir = write_pretraining_dir(root / "pretrain", model)
    data = root / "data"
    paths = write_audio_dir(data, LENGTHS, seed=4)
    return model, model_dir, data, paths


@pytest.fixture(scope="module")
def ark_output(setup, tmp_path_factory):
    _, model_dir, data, _ = setup
    out_dir = tmp_path_factory.mktemp("out") / "features"
    process = run_module("dinosr_espnet.bin.extract_features", str(model_dir), str(out_dir), "--data_dir", str(data),
                         "--layers", "0,2,3", "--units", "codebook,head", "--max_batch_size", "3",
                         "--device", "cpu")
    assert "6 utterances" in process.stdout
    return out_dir


def test_outputs_and_geometry(ark_output):
    names = ["layer0", "layer2", "layer3", "codebook_units_layer2", "codebook_units_layer3", "head_units_layer2",
             "head_units_layer3"]
    assert listing(ark_output) == sorted([f"{name}.{suffix}" for name in names for suffix in ("ark", "scp")]
                                         + ["extraction.json", "utt2num_frames"])
    summary = json.loads((ark_output / "extraction.json").read_text())
    assert summary["frame_geometry"]["frame_rate_hz"] == 50.0
    assert summary["frame_geometry"]["receptive_field_samples"] == 400
    frames = dict(line.split() for line in (ark_output / "utt2num_frames").read_text().splitlines())
    assert [int(value) for value in frames.values()] == [frames_of(n) for n in LENGTHS]
    assert not list(ark_output.parent.glob(".*partial"))


def test_codebook_units_equal_the_pretraining_assignments(setup, ark_output):
    """The units of every codebook equal what DinoSRModel.forward assigns at its masked frames, the forward
    run on the same audio (read independently) in one padded batch of all utterances."""
    model, _, _, paths = setup
    waveforms = [read_audio(path) for path in paths.values()]
    mask, assigned = pretraining_assignments(model, waveforms)
    units = [dict(kaldiio.load_scp(str(ark_output / f"codebook_units_layer{layer}.scp"))) for layer in (2, 3)]
    for k in range(2):
        ours = torch.cat([torch.from_numpy(units[k][utterance].astype(np.int64))[mask[row, :frames_of(LENGTHS[row])]]
                          for row, utterance in enumerate(paths)])
        assert torch.equal(ours, assigned[k]), k
    assert int(mask.sum()) > 50  # require_same_masks thins every row to the shortest one's count
    assert len(set(np.concatenate(list(units[0].values())).tolist())) > 2


def test_head_units_and_last_layer_equal_the_student_forward(setup, ark_output):
    model, _, _, paths = setup
    heads = [dict(kaldiio.load_scp(str(ark_output / f"head_units_layer{layer}.scp"))) for layer in (2, 3)]
    last = dict(kaldiio.load_scp(str(ark_output / "layer3.scp")))
    for utterance, path in paths.items():
        waveform = torch.from_numpy(read_audio(path))[None]
        with torch.no_grad():
            final = model.student(waveform, torch.tensor([waveform.size(1)])).x[0]
        assert last[utterance].dtype == np.float32 and last[utterance].shape == (frames_of(waveform.size(1)), 64)
        assert np.allclose(last[utterance], final.numpy(), atol=1e-5)
        for k in range(2):
            assert np.array_equal(heads[k][utterance], model.heads[k](final).argmax(-1).numpy()), (utterance, k)


def extract_recording(monkeypatch, *args, **kwargs):
    """Run ``extract`` and return {utterance: outputs} exactly as the extractor handed them to the writer."""
    from dinosr_espnet.export.features import BatchFeatureExtractor

    produced = []
    original = BatchFeatureExtractor.__call__

    def recording(self, waveforms):
        results = original(self, waveforms)
        produced.extend(results)
        return results

    monkeypatch.setattr(BatchFeatureExtractor, "__call__", recording)
    order = []
    summary = extract(*args, progress=lambda done, total: order.append(done), **kwargs)
    return summary, produced


def test_ark_and_npy_read_back_unchanged(setup, tmp_path, monkeypatch):
    """What the extractor computed is what kaldiio / numpy read back, bit for bit, in input order; and
    length-sorted padded batches of 2 agree with one batch of all utterances (padding changes nothing)."""
    model, model_dir, data, paths = setup
    from dinosr_espnet.export.extraction import length_batches
    from dinosr_espnet.export.features import BatchFeatureExtractor

    request = FeatureRequest(layers=(0, 2), units=("codebook", "head"), unit_layers=(3,))
    _, produced = extract_recording(monkeypatch, model_dir, tmp_path / "ark", data_dir_inputs(data), request,
                                    max_batch_size=2)
    order = [utterance for batch in length_batches(dict(zip(paths, LENGTHS)), list(paths), 10 ** 9, 2)
             for utterance in batch]
    written = dict(zip(order, produced))
    scp = tmp_path / "ark" / "layer2.scp"
    assert [line.split()[0] for line in scp.read_text().splitlines()] == list(paths)  # input order
    for name in ("layer0", "layer2", "codebook_units_layer3", "head_units_layer3"):
        stored = dict(kaldiio.load_scp(str(tmp_path / "ark" / f"{name}.scp")))
        for utterance in paths:
            assert stored[utterance].dtype == written[utterance][name].dtype
            assert np.array_equal(stored[utterance], written[utterance][name]), (name, utterance)
    one_batch = dict(zip(paths, BatchFeatureExtractor(model, request)([read_audio(p) for p in paths.values()])))
    for utterance in paths:
        assert np.allclose(one_batch[utterance]["layer2"], written[utterance]["layer2"], atol=1e-5)
        assert np.array_equal(one_batch[utterance]["codebook_units_layer3"],
                              written[utterance]["codebook_units_layer3"])

    _, produced = extract_recording(monkeypatch, model_dir, tmp_path / "npy", data_dir_inputs(data), request,
                                    output_format="npy", max_batch_size=2)
    written = dict(zip(order, produced))
    assert listing(tmp_path / "npy") == ["codebook_units_layer3", "extraction.json", "head_units_layer3", "layer0",
                                         "layer2", "utt2num_frames"]
    for utterance in paths:
        for name in ("layer2", "codebook_units_layer3"):
            assert np.array_equal(np.load(tmp_path / "npy" / name / f"{utterance}.npy"), written[utterance][name])


def test_audio_files_and_teacher_layers(setup, tmp_path):
    model, model_dir, _, paths = setup
    out_dir = tmp_path / "teacher"
    run_module("dinosr_espnet.bin.extract_features", str(model_dir), str(out_dir), "--audio",
               *map(str, paths.values()), "--layers", "1", "--encoder", "teacher", "--format", "npy", "--quiet")
    utterance, path = next(iter(paths.items()))
    waveform = torch.from_numpy(read_audio(path))[None]
    with torch.no_grad():
        front = model.student.extract_features(waveform, torch.tensor([waveform.size(1)]))
        layer = model.teacher.encoder.layers[0]
        encoder = model.teacher.encoder
        x = encoder.layer_norm(front.features + encoder.pos_conv(front.features))
        expected, _ = layer(x)
    assert np.allclose(np.load(out_dir / "layer1" / f"{utterance}.npy"), expected[0].numpy(), atol=1e-5)


# --- bad inputs ------------------------------------------------------------------------------------

def run_extract(*args):
    return run_module("dinosr_espnet.bin.extract_features", *map(str, args), check=False)


def test_bad_inputs_are_named_without_traceback(setup, tmp_path):
    _, model_dir, data, _ = setup
    out_dir = tmp_path / "out"
    bad_dir = tmp_path / "bad_data"
    bad_dir.mkdir()
    lines = (data / "wav.scp").read_text().splitlines()
    (bad_dir / "wav.scp").write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n")
    cases = [
        ((model_dir, out_dir, "--data_dir", data, "--layers", "1,9"), ["--layers", "9", "0..3"]),
        ((model_dir, out_dir, "--data_dir", data, "--units", "codebook", "--unit_layers", "1"),
         ["--unit_layers", "layer 1", "[2, 3]"]),
        ((model_dir, out_dir, "--data_dir", bad_dir, "--layers", "1"), [f"{bad_dir / 'wav.scp'}:3", "duplicate"]),
        ((tmp_path / "no_model", out_dir, "--data_dir", data, "--layers", "1"), ["no_model"]),
        ((model_dir, out_dir, "--audio", tmp_path / "missing.wav", "--layers", "1"), ["missing.wav"]),
    ]
    for args, needles in cases:
        process = run_extract(*args)
        assert process.returncode == 1, (args, process.stderr)
        assert "Traceback" not in process.stderr, process.stderr
        for needle in needles:
            assert needle in process.stderr, (needle, process.stderr)
    assert not out_dir.exists() and not list(tmp_path.glob(".out.*"))


def test_model_type_command_entries_and_data2vec_units_are_refused(setup, tmp_path):
    model, model_dir, data, _ = setup
    from dinosr_espnet.nets import Data2VecModel

    data2vec_dir = write_pretraining_dir(tmp_path / "data2vec", Data2VecModel(tiny_config()), "data2vec")
    with pytest.raises(FeatureRequestError, match="Data2VecModel has no codebooks"):
        extract(data2vec_dir, tmp_path / "out", data_dir_inputs(data), FeatureRequest(units=("codebook",)))
    piped = tmp_path / "piped"
    piped.mkdir()
    (piped / "wav.scp").write_text("utt000 cat /dev/null |\n")
    with pytest.raises(ValueError, match="--allow_wav_scp_commands"):
        extract(model_dir, tmp_path / "out", data_dir_inputs(piped), FeatureRequest(layers=(1,)))
    asr_like = tmp_path / "asr"
    asr_like.mkdir()
    (asr_like / "config.yaml").write_text("encoder: dinosr\ntoken_list: [<blank>]\n")
    (asr_like / "valid.cer_ctc.best.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="fine-tuned ASR model"):
        extract(asr_like, tmp_path / "out", data_dir_inputs(data), FeatureRequest(layers=(1,)))
    assert not (tmp_path / "out").exists()


def test_interrupted_extraction_leaves_nothing(setup, tmp_path, monkeypatch):
    _, model_dir, data, _ = setup
    from dinosr_espnet.export import extraction

    calls = {"count": 0}
    original = extraction.read_waveform

    def failing(audio, utterance, allow_commands=False):
        calls["count"] += 1
        if calls["count"] > 3:
            raise extraction.InputError(f"utterance '{utterance}': simulated failure")
        return original(audio, utterance, allow_commands)

    monkeypatch.setattr(extraction, "read_waveform", failing)
    with pytest.raises(extraction.InputError, match="simulated"):
        extract(model_dir, tmp_path / "out", data_dir_inputs(data), FeatureRequest(layers=(1,)), max_batch_size=2)
    assert not (tmp_path / "out").exists() and listing(tmp_path) == []


def test_an_allowed_wav_scp_command_is_run_and_gives_the_file_s_features(setup, tmp_path):
    _, model_dir, data, paths = setup
    utterance, path = next(iter(paths.items()))
    piped = tmp_path / "piped"
    piped.mkdir()
    (piped / "wav.scp").write_text(f"{utterance} cat {path} |\n")
    direct, through_command = tmp_path / "direct", tmp_path / "command"
    run_module("dinosr_espnet.bin.extract_features", str(model_dir), str(direct), "--audio", str(path),
               "--layers", "2", "--format", "npy", "--quiet")
    run_module("dinosr_espnet.bin.extract_features", str(model_dir), str(through_command), "--data_dir", str(piped),
               "--layers", "2", "--format", "npy", "--quiet", "--allow_wav_scp_commands")
    assert np.array_equal(np.load(through_command / "layer2" / f"{utterance}.npy"),
                          np.load(direct / "layer2" / f"{utterance}.npy"))


def test_a_25_hz_log_mel_model_reports_its_own_frame_geometry(setup, tmp_path):
    _, _, data, _ = setup
    config = tiny_config().replace(frontend="fbank", fbank_num_mels=40, fbank_channels=4, fbank_time_strides=[2, 2])
    model_dir = write_pretraining_dir(tmp_path / "pretrain_fbank", trained_looking_model(config, seed=2))
    out_dir = tmp_path / "features"
    run_module("dinosr_espnet.bin.extract_features", str(model_dir), str(out_dir), "--data_dir", str(data),
               "--layers", "1", "--device", "cpu")
    geometry = json.loads((out_dir / "extraction.json").read_text())["frame_geometry"]
    assert (geometry["frame_rate_hz"], geometry["stride_samples"], geometry["receptive_field_samples"]) == (25.0, 640, 400)
    frames = [int(line.split()[1]) for line in (out_dir / "utt2num_frames").read_text().splitlines()]
    assert frames == [(n - 400) // 640 + 1 for n in LENGTHS]
