"""export_hf on a fine-tuned ESPnet CTC model: transformers' Data2VecAudioForCTC + Wav2Vec2Processor from
OUT_DIR give our emissions and our greedy transcripts (bin.asr_inference, through ESPnet) on the same audio.

The ASR experiment dir is made as ESPnet makes it: ``bin.asr_train --dry_run`` writes config.yaml from
conf/finetune_ctc_tiny.yaml (encoder: dinosr initialised from a tiny pre-training dir), and the model ESPnet
builds from it is saved as ``valid.cer_ctc.best.pth``. Its CTC layer is random, so every token appears in
the transcripts; only ``<sos/eos>`` gets a large negative bias, as a trained ESPnet CTC layer has (it is
never a CTC target), because transformers prints that token literally (documented in OUT_DIR/README.md).
"""
import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from export_fixtures import read_audio, relative_error, tiny_config, trained_looking_model, write_audio_dir, \
    write_pretraining_dir

from dinosr_espnet.asr.token_list import write_char_token_list
from dinosr_espnet.export.huggingface import ExportError, export_model

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory):
    from dinosr_espnet.bin import asr_train
    from espnet2.tasks.asr import ASRTask

    root = tmp_path_factory.mktemp("ctc")
    pretrained = write_pretraining_dir(root / "pretrain", trained_looking_model(tiny_config()))
    token_list = write_char_token_list(root / "tokens.txt")
    data = root / "data"
    write_audio_dir(data, [24000, 17000, 30000, 9000, 12500], seed=1)
    (data / "speech_shape").write_text((data / "utt2num_samples").read_text())
    exp = root / "exp"
    data_options = [option for split in ("train", "valid") for option in (
        f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        f"--{split}_shape_file", f"{data}/speech_shape")]
    asr_train.main(["--config", str(REPO_ROOT / "conf" / "finetune_ctc_tiny.yaml"), "--output_dir", str(exp),
                    "--token_list", str(token_list), "--ngpu", "0", "--dry_run", "true",
                    "--encoder_conf", f"pretrained_model={pretrained / 'model.pth'}", *data_options])
    torch.manual_seed(2)
    model, _ = ASRTask.build_model_from_file(exp / "config.yaml", None, "cpu")
    with torch.no_grad():
        model.ctc.ctc_lo.bias[-1] = -30.0  # <sos/eos>, the last token
    torch.save(model.state_dict(), exp / "valid.cer_ctc.best.pth")
    return exp, data


@pytest.fixture(scope="module")
def ctc_export(asr_dir, tmp_path_factory):
    exp, _ = asr_dir
    out_dir = tmp_path_factory.mktemp("ctc_export") / "hf_ctc"
    summary = export_model(exp, out_dir)
    assert summary["kind"] == "ctc"
    return out_dir


@pytest.fixture(scope="module")
def ours(asr_dir, tmp_path_factory):
    """Our greedy transcripts and emissions, through ESPnet (bin.asr_inference and its emissions code)."""
    from dinosr_espnet.bin import asr_inference
    from dinosr_espnet.data.kaldi_data import read_data_dir
    from dinosr_espnet.decode.emissions import compute_emissions, load_asr_model

    exp, data = asr_dir
    output = tmp_path_factory.mktemp("greedy")
    assert asr_inference.main(["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
                               str(exp / "valid.cer_ctc.best.pth"), "--data_dir", str(data), "--output_dir",
                               str(output), "--device", "cpu", "--batch_size", "3"]) == 0
    texts = dict(line.split(" ", 1) if " " in line else (line, "")
                 for line in (output / "1best_recog" / "text").read_text().splitlines())
    model, token_list = load_asr_model(exp / "config.yaml", exp / "valid.cer_ctc.best.pth")
    emissions = compute_emissions(model, token_list, read_data_dir(data), batch_size=3, log=lambda _: None)
    return texts, dict(zip(emissions.utt_ids, emissions.log_probs)), token_list


def test_processor_vocabulary_is_the_token_list(ctc_export, ours):
    _, _, token_list = ours
    processor = transformers.Wav2Vec2Processor.from_pretrained(ctc_export)
    tokenizer = processor.tokenizer
    # same ids; ESPnet's <space> is spelled '|' (transformers does not reload another delimiter)
    expected = ["|" if token == "<space>" else token for token in token_list]
    assert [tokenizer.convert_ids_to_tokens(index) for index in range(len(token_list))] == expected
    assert len(tokenizer) == len(token_list)
    assert tokenizer.pad_token == "<blank>" and tokenizer.pad_token_id == token_list.index("<blank>") == 0
    assert tokenizer.word_delimiter_token == "|" and tokenizer.unk_token == "<unk>"
    assert processor.feature_extractor.do_normalize is True
    config = json.loads((ctc_export / "config.json").read_text())
    assert config["architectures"] == ["Data2VecAudioForCTC"] and config["vocab_size"] == len(token_list)
    assert config["pad_token_id"] == 0
    assert {path.suffix for path in ctc_export.iterdir()} <= {".json", ".safetensors", ".md"}


def test_emissions_and_greedy_transcripts_equal_ours(asr_dir, ctc_export, ours):
    _, data = asr_dir
    texts, log_probs, _ = ours
    model = transformers.Data2VecAudioForCTC.from_pretrained(ctc_export).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(ctc_export)
    transcripts = {}
    for line in (data / "wav.scp").read_text().splitlines():
        utterance, path = line.split(" ", 1)
        inputs = processor(read_audio(path), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits
        assert relative_error(log_probs[utterance], torch.log_softmax(logits[0], -1)) < 1e-5, utterance
        # whitespace: transformers keeps the double space of a <space> <blank> <space> run (README)
        transcripts[utterance] = " ".join(processor.batch_decode(logits.argmax(-1))[0].split())
    assert transcripts == texts
    assert sum(len(text.split()) for text in texts.values()) >= 5  # the comparison is not between empty strings


def test_readme_snippet_loads_the_export(ctc_export, asr_dir):
    _, data = asr_dir
    snippet = (ctc_export / "README.md").read_text().split("```python\n")[1].split("```")[0]
    waveform = read_audio(data / "wav" / "utt000.wav")
    namespace = {"OUT_DIR": str(ctc_export), "waveform": waveform}
    exec(snippet, namespace)  # noqa: S102  (the README's own snippet)
    assert isinstance(namespace["text"], str)


def test_unsupported_asr_config_field_is_named(asr_dir, tmp_path):
    import yaml

    exp, _ = asr_dir
    odd = tmp_path / "odd"
    odd.mkdir()
    config = yaml.safe_load((exp / "config.yaml").read_text())
    config["frontend"] = "default"
    (odd / "config.yaml").write_text(yaml.safe_dump(config))
    (odd / "valid.cer_ctc.best.pth").symlink_to(exp / "valid.cer_ctc.best.pth")
    with pytest.raises(ExportError, match="frontend is 'default'"):
        export_model(odd, tmp_path / "out")
    with pytest.raises(ExportError, match="no teacher"):
        export_model(exp, tmp_path / "out", encoder="teacher")
    assert not (tmp_path / "out").exists()


def test_word_delimiter_bar_token_list():
    """A fairseq-style list with '|' as the word boundary keeps '|' as the delimiter."""
    import tempfile
    from pathlib import Path

    from dinosr_espnet.export.huggingface import _tokenizer_for

    with tempfile.TemporaryDirectory() as directory:
        tokenizer, tokens = _tokenizer_for(["<blank>", "<unk>", "|", "A", "B", "<sos/eos>"], Path(directory))
    assert tokenizer.word_delimiter_token == "|" and tokens.boundary_index == 2
    ids = np.array([3, 3, 0, 3, 2, 2, 4, 0])
    assert tokenizer.decode(ids) == "AA B"
