"""export_hf on pre-trained models: transformers' Data2VecAudioModel gives our hidden states layer by layer,
the codebooks file gives pre-training's units, an imported official checkpoint exports, bad inputs fail cleanly.

Expectations come from our own forward (``SpeechEncoder``, ``DinoSRModel``) or from the checkpoint's tensors,
compared with what transformers computes from OUT_DIR; the export's mapping is never compared with itself.
"""
import json

import numpy as np
import pytest
import torch
import yaml
from conftest import run_module
from export_fixtures import (frames_of, listing, pretraining_assignments, relative_error, tiny_config,
                             trained_looking_model, utterance_audio, write_pretraining_dir)

from dinosr_espnet.export.features import BatchFeatureExtractor, FeatureRequest
from dinosr_espnet.export.huggingface import ExportError, export_model
from dinosr_espnet.nets import dinosr_to_fairseq

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file  # noqa: E402  (a transformers dependency)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    model = trained_looking_model(tiny_config())
    directory = write_pretraining_dir(tmp_path_factory.mktemp("pretrain") / "exp" / "pretrain_dinosr", model)
    return model, directory


@pytest.fixture(scope="module")
def student_export(pretrained, tmp_path_factory):
    _, directory = pretrained
    out_dir = tmp_path_factory.mktemp("export") / "hf"
    process = run_module("dinosr_espnet.bin.export_hf", str(directory), str(out_dir))
    assert "wrote pretrained model" in process.stdout
    return out_dir


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(3)
    return [utterance_audio(rng, samples) for samples in (24000, 17000, 9000)]


def hugging_face(out_dir):
    model = transformers.Data2VecAudioModel.from_pretrained(out_dir).eval()
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(out_dir)
    return model, extractor


def hidden_states_of(model, extractor, waveforms):
    inputs = extractor(waveforms, sampling_rate=16000, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True).hidden_states


def test_export_writes_safetensors_and_json_only(student_export):
    assert listing(student_export) == ["README.md", "codebooks.safetensors", "config.json", "export.json",
                                       "model.safetensors", "preprocessor_config.json"]
    config = json.loads((student_export / "config.json").read_text())
    assert config["model_type"] == "data2vec-audio" and config["num_hidden_layers"] == 3
    assert json.loads((student_export / "preprocessor_config.json").read_text())["do_normalize"] is True
    assert not list(student_export.parent.glob(".*partial"))


def test_hidden_states_equal_ours_layer_by_layer_unpadded(pretrained, student_export, audio):
    model, _ = pretrained
    hf_model, extractor = hugging_face(student_export)
    same_length = [audio[0], audio[0][::-1].copy()]
    theirs = hidden_states_of(hf_model, extractor, same_length)
    assert len(theirs) == 4  # Transformer input + 3 layers
    ours = BatchFeatureExtractor(model, FeatureRequest(layers=(0, 1, 2, 3)))(same_length)
    for row in range(2):
        for layer in range(4):
            assert relative_error(ours[row][f"layer{layer}"], theirs[layer][row]) < TOLERANCE, (row, layer)
    # the last layer also straight from the student's forward (no hooks involved)
    waveform = torch.from_numpy(np.stack(same_length))
    with torch.no_grad():
        last = model.student(waveform, torch.tensor([len(audio[0])] * 2)).x
    assert relative_error(last, theirs[-1]) < TOLERANCE


def test_hidden_states_equal_ours_on_a_padded_batch(pretrained, student_export, audio):
    """Ours is padding-invariant; transformers is for the longest utterance of the batch and for each one
    run alone (see the next test for the shorter ones in the batch)."""
    model, _ = pretrained
    hf_model, extractor = hugging_face(student_export)
    ours = BatchFeatureExtractor(model, FeatureRequest(layers=(0, 1, 2, 3)))(audio)
    batch = hidden_states_of(hf_model, extractor, audio)
    for row, waveform in enumerate(audio):
        frames = frames_of(len(waveform))
        assert ours[row]["layer3"].shape == (frames, 64)
        alone = hidden_states_of(hf_model, extractor, [waveform])
        for layer in range(4):
            assert relative_error(ours[row][f"layer{layer}"], alone[layer][0]) < TOLERANCE, (row, layer)
    for layer in range(4):
        assert relative_error(ours[0][f"layer{layer}"], batch[layer][0]) < TOLERANCE


def test_transformers_padded_batch_differs_for_shorter_utterances_as_the_readme_says(student_export, audio):
    """transformers zeroes padding only before the first positional-convolution block (as fairseq)."""
    hf_model, extractor = hugging_face(student_export)
    batch = hidden_states_of(hf_model, extractor, audio)
    alone = hidden_states_of(hf_model, extractor, [audio[2]])
    frames = frames_of(len(audio[2]))
    assert relative_error(alone[-1][0], batch[-1][2, :frames]) > 1e-3
    assert "only before the first" in (student_export / "README.md").read_text()


def test_codebooks_file_holds_running_sum_over_count_and_the_heads(pretrained, student_export):
    model, directory = pretrained
    state = torch.load(directory / "model.pth", weights_only=True)
    books = load_file(str(student_export / "codebooks.safetensors"))
    expected = state["ssl.codebooks.sums"] / state["ssl.codebooks.counts"][..., None]
    assert torch.allclose(books["codewords"], expected, rtol=0, atol=0)
    assert books["layers"].tolist() == [2, 3]  # top average_top_k_layers=2 of 3 layers, 1-based
    assert torch.equal(books["head_weight"][1], state["ssl.heads.1.weight"])
    assert torch.equal(books["head_bias"][0], state["ssl.heads.0.bias"])


def run_readme_recipe(out_dir, waveform):
    """Execute the units snippet of OUT_DIR/README.md as written; returns its variables."""
    recipe = (out_dir / "README.md").read_text().split("```python\n")[2].split("```")[0]
    namespace = {"OUT_DIR": str(out_dir), "waveform": waveform}
    exec(recipe, namespace)  # noqa: S102  (the README's own snippet)
    return namespace


def test_teacher_export_and_the_readme_recipe_give_pretraining_units(pretrained, tmp_path, audio):
    """Follow OUT_DIR/README.md literally (hooks on feed_forward, instance norm, nearest codeword) and
    compare with the assignments DinoSRModel.forward makes in pre-training."""
    model, directory = pretrained
    out_dir = tmp_path / "teacher"
    export_model(directory, out_dir, encoder="teacher")
    for waveform in audio:
        units = run_readme_recipe(out_dir, waveform)["units"]
        mask, assigned = pretraining_assignments(model, [waveform])
        mask = mask[0]
        assert int(mask.sum()) > 10
        for k in range(2):
            assert units[k].shape == (frames_of(len(waveform)),)
            assert torch.equal(units[k][mask], assigned[k]), k
        assert len(set(units[0].tolist())) > 1  # not a degenerate single unit


def test_student_export_and_the_readme_recipe_give_head_units(pretrained, student_export, audio):
    model, _ = pretrained
    for waveform in audio:
        head_units = run_readme_recipe(student_export, waveform)["head_units"]
        with torch.no_grad():
            final = model.student(torch.from_numpy(waveform)[None], torch.tensor([len(waveform)])).x[0]
        assert torch.equal(head_units, torch.stack([head(final).argmax(-1) for head in model.heads]))


def test_imported_official_checkpoint_exports(tmp_path, audio):
    """A fake official checkpoint (random tensors in the official key layout) -> import_fairseq -> export_hf:
    transformers' parameters are the checkpoint's tensors, its codewords _codebook / _codebook_cnts."""
    from dinosr_espnet.bin.import_fairseq import import_checkpoint
    from dinosr_espnet.nets import DinoSRModel

    config = tiny_config()
    generator = torch.Generator().manual_seed(5)
    layout = dinosr_to_fairseq(DinoSRModel(config).state_dict())
    official = {name: torch.randn(value.shape, generator=generator) for name, value in layout.items()
                if name != "_ema"}
    official.update({name: official[name].abs() + 0.5 for name in official if name.startswith("_codebook_cnts")})
    official["_ema"] = {name: torch.randn(value.shape, generator=generator) for name, value in layout["_ema"].items()}
    cfg = {"model": {"_name": "dinosr", "encoder_layers": 3, "encoder_embed_dim": 64, "encoder_ffn_embed_dim": 128,
                     "encoder_attention_heads": 4, "average_top_k_layers": 2, "codebook_size": 16,
                     "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2",
                     "conv_pos": 10, "conv_pos_groups": 16, "pos_conv_depth": 2}}
    torch.save({"cfg": cfg, "model": official, "optimizer_history": [{"num_updates": 7}]}, tmp_path / "dinosr.ckpt")
    import_checkpoint(tmp_path / "dinosr.ckpt", tmp_path / "exp" / "pretrain_official" / "model.pth")
    out_dir = tmp_path / "hf_official"
    export_model(tmp_path / "exp" / "pretrain_official", out_dir)
    hf_model, extractor = hugging_face(out_dir)
    hf_state = hf_model.state_dict()
    pairs = {"feature_projection.projection.weight": "post_extract_proj.weight",
             "encoder.layers.1.feed_forward.intermediate_dense.weight": "encoder.layers.1.fc1.weight",
             "encoder.layers.2.layer_norm.bias": "encoder.layers.2.self_attn_layer_norm.bias",
             "encoder.layers.0.attention.k_proj.weight": "encoder.layers.0.self_attn.k_proj.weight",
             "feature_extractor.conv_layers.0.conv.weight": "feature_extractor.conv_layers.0.0.weight",
             "masked_spec_embed": "mask_emb"}
    for hf_name, official_name in pairs.items():
        assert torch.equal(hf_state[hf_name], official[official_name]), hf_name
    assert torch.equal(hf_state["encoder.pos_conv_embed.layers.1.conv.weight"], official["encoder.pos_conv.1.0.weight"])
    books = load_file(str(out_dir / "codebooks.safetensors"))
    assert torch.allclose(books["codewords"][1], official["_codebook1"] / official["_codebook_cnts1"][:, None],
                          rtol=1e-6, atol=0)
    # the teacher export holds the checkpoint's _ema encoder
    teacher_dir = tmp_path / "hf_official_teacher"
    export_model(tmp_path / "exp" / "pretrain_official", teacher_dir, encoder="teacher")
    teacher_state = transformers.Data2VecAudioModel.from_pretrained(teacher_dir).state_dict()
    assert torch.equal(teacher_state["encoder.layers.1.feed_forward.output_dense.bias"],
                       official["_ema"]["layers.1.fc2.bias"])
    assert torch.isfinite(hidden_states_of(hf_model, extractor, audio[:1])[-1]).all()


# --- bad inputs ------------------------------------------------------------------------------------

def run_export(*args):
    return run_module("dinosr_espnet.bin.export_hf", *map(str, args), check=False)


def test_missing_model_dir_is_named_without_traceback(tmp_path):
    process = run_export(tmp_path / "no_such_model", tmp_path / "out")
    assert process.returncode == 1
    assert "no_such_model" in process.stderr and "Traceback" not in process.stderr
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint_is_named_without_traceback(pretrained, tmp_path):
    _, directory = pretrained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text((directory / "config.yaml").read_text())
    (broken / "model.pth").write_bytes((directory / "model.pth").read_bytes()[:1000])
    process = run_export(broken, tmp_path / "out")
    assert process.returncode == 1 and "Traceback" not in process.stderr, process.stderr
    assert f"{broken / 'model.pth'}: not a readable checkpoint" in process.stderr
    assert not (tmp_path / "out").exists()


def test_wrong_model_type_and_unsupported_fields_are_named(pretrained, tmp_path):
    _, directory = pretrained
    hubert = tmp_path / "hubert"
    hubert.mkdir()
    (hubert / "config.yaml").write_text(yaml.safe_dump({"model": "hubert", "model_conf": {}}))
    with pytest.raises(ValueError, match="model is 'hubert'"):
        export_model(hubert, tmp_path / "out")
    conformer = tmp_path / "conformer"
    conformer.mkdir()
    (conformer / "config.yaml").write_text(yaml.safe_dump({"encoder": "conformer", "token_list": ["<blank>"]}))
    with pytest.raises(ValueError, match="encoder is 'conformer'"):
        export_model(conformer, tmp_path / "out")
    # a field Data2VecAudio cannot represent (a pre-LN Transformer, or a future front-end option)
    for field, value in (("layer_norm_first", True), ("extractor_mode", "mel_filterbank")):
        odd = tmp_path / f"odd_{field}"
        odd.mkdir()
        (odd / "model.pth").symlink_to(directory / "model.pth")
        document = yaml.safe_load((directory / "config.yaml").read_text())
        document["model_conf"][field] = value
        (odd / "config.yaml").write_text(yaml.safe_dump(document))
        with pytest.raises(ExportError, match=f"model_conf.{field}"):
            export_model(odd, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_non_empty_out_dir_is_refused_and_kept(pretrained, tmp_path):
    _, directory = pretrained
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    process = run_export(directory, tmp_path / "out")
    assert process.returncode == 1 and "not empty" in process.stderr and "Traceback" not in process.stderr
    assert listing(tmp_path / "out") == ["keep.txt"]


def test_missing_transformers_gets_an_install_hint(pretrained, tmp_path, monkeypatch):
    import sys

    _, directory = pretrained
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ExportError, match="pip install"):
        export_model(directory, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_real_tiny_pretraining_run_exports(tmp_path):
    """bin.dinosr_train on conf/pretrain_dinosr_tiny.yaml (4 updates), then export_hf on its output dir."""
    from conftest import REPO_ROOT
    from export_fixtures import read_audio, write_audio_dir

    from dinosr_espnet.analysis.model_loading import load_model

    data = tmp_path / "data"
    paths = write_audio_dir(data, [32000, 40000, 36000, 48000], seed=6)
    (data / "speech_shape").write_text((data / "utt2num_samples").read_text())
    exp = tmp_path / "exp" / "pretrain_dinosr"
    data_options = [option for split in ("train", "valid") for option in (
        f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        f"--{split}_shape_file", f"{data}/speech_shape")]
    run_module("dinosr_espnet.bin.dinosr_train", "--config", str(REPO_ROOT / "conf" / "pretrain_dinosr_tiny.yaml"),
               "--ngpu", "0", "--output_dir", str(exp), "--batch_bins", "96000", "--num_iters_per_epoch", "2",
               "--max_epoch", "2", "--scheduler_conf", "max_update=4", *data_options, cwd=REPO_ROOT)
    out_dir = tmp_path / "hf"
    run_module("dinosr_espnet.bin.export_hf", str(exp), str(out_dir))
    model = load_model(exp)
    assert model.num_updates == 4
    hf_model, extractor = hugging_face(out_dir)
    waveform = read_audio(next(iter(paths.values())))
    with torch.no_grad():
        ours = model.student(torch.from_numpy(waveform)[None], torch.tensor([len(waveform)])).x
    assert relative_error(ours, hidden_states_of(hf_model, extractor, [waveform])[-1]) < TOLERANCE
