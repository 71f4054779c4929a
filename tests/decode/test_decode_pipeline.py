"""Stage 6 on stored emissions: output order and ids follow the data dir; clear errors for missing files."""
import json

import pytest
import yaml
from conftest import run_module
from decode_fixtures import TOKENS, build_test_lm, noisy_posteriors, sentences, write_data_dir, write_token_list

from dinosr_espnet.decode.decode_config import load_decode_config
from dinosr_espnet.decode.emissions import Emissions, model_signature, save_emissions
from dinosr_espnet.decode.pipeline import run_decoding

UTT_IDS = ["spk2-u9", "spk1-u3", "spk3-u1", "spk1-u10", "spk2-u2"]  # not sorted, on purpose


def _no_model(*_):
    raise AssertionError("the model must not be loaded when stored emissions are valid")


@pytest.fixture
def stored_setup(tmp_path, repo_root):
    """Data dirs, a train config, a stand-in model file and emissions stored for it."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"token_list": TOKENS}))
    model_file = tmp_path / "model.pth"
    model_file.write_bytes(b"stand-in")
    output_dir = tmp_path / "decode"
    data_dirs = []
    for offset, name in enumerate(["dev_other", "test_clean"]):
        texts = sentences(len(UTT_IDS), seed=20 + offset)
        data_dir = write_data_dir(tmp_path / "dump" / name, UTT_IDS, texts)
        save_emissions(output_dir / name / "emissions.npz", Emissions(
            UTT_IDS, [noisy_posteriors(t, TOKENS, 2.0, seed=i) for i, t in enumerate(texts)], TOKENS,
            {**model_signature(model_file), "data_dir": str(data_dir)}))
        data_dirs.append(data_dir)
    return {"config": config, "model": model_file, "output": output_dir, "dirs": data_dirs, "tmp": tmp_path,
            "decode_config": load_decode_config(repo_root / "conf" / "decode_tiny.yaml")}


def _ids(path):
    return [line.split(" ", 1)[0] for line in path.read_text().splitlines()]


def test_outputs_keep_data_dir_order_and_ids(stored_setup):
    setup = stored_setup
    lm = build_test_lm(setup["tmp"], write_token_list(setup["tmp"] / "tokens.txt"))
    run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"], setup["decode_config"],
                 tune_set=setup["dirs"][0], lexicon=lm.lexicon, lm=lm.binary, model_loader=_no_model,
                 log=lambda *_: None)
    for data_dir in setup["dirs"]:
        for mode in ("viterbi", "4gram"):
            mode_dir = setup["output"] / data_dir.name / mode
            assert _ids(mode_dir / "text") == UTT_IDS
            assert [line.rsplit("(", 1)[1] for line in (mode_dir / "hyp.trn").read_text().splitlines()] == [
                f"{u.split('-')[0]}-{u})" for u in UTT_IDS]
            assert json.loads((mode_dir / "score.json").read_text())["wer"] is not None
        assert (json.loads((setup["output"] / data_dir.name / "4gram" / "score.json").read_text())["wer"]
                < json.loads((setup["output"] / data_dir.name / "viterbi" / "score.json").read_text())["wer"])
    search_rows = (setup["output"] / "lm_weight_search.tsv").read_text().splitlines()
    assert len(search_rows) == 1 + setup["decode_config"].search.budget
    assert (setup["output"] / "lm_weight_search.md").is_file()
    best = json.loads((setup["output"] / "best_setting.json").read_text())
    assert best["beam"] == setup["decode_config"].final_beam


def test_rerun_skips_finished_outputs(stored_setup):
    setup = stored_setup
    kwargs = dict(model_loader=_no_model, log=lambda *_: None)
    run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"][1:], setup["decode_config"], **kwargs)
    text = setup["output"] / "test_clean" / "viterbi" / "text"
    stamp = text.stat().st_mtime_ns
    messages = []
    run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"][1:], setup["decode_config"],
                 model_loader=_no_model, log=messages.append)
    assert text.stat().st_mtime_ns == stamp
    assert any("up to date" in m for m in messages)


def test_stale_emissions_are_recomputed(stored_setup):
    setup = stored_setup
    setup["model"].write_bytes(b"a different model")
    with pytest.raises(AssertionError, match="must not be loaded"):
        run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"][1:], setup["decode_config"],
                     model_loader=_no_model, log=lambda *_: None)


def test_missing_lm_or_lexicon_is_a_clear_error(stored_setup):
    setup = stored_setup
    lexicon = setup["tmp"] / "lexicon.txt"
    lexicon.write_text("CAT\tC A T <space>\n")
    with pytest.raises(FileNotFoundError, match="--lm not found"):
        run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"], setup["decode_config"],
                     lexicon=lexicon, lm=setup["tmp"] / "missing.bin", model_loader=_no_model)
    with pytest.raises(ValueError, match="both --lexicon and --lm"):
        run_decoding(setup["config"], setup["model"], setup["output"], setup["dirs"], setup["decode_config"],
                     lexicon=lexicon, model_loader=_no_model)
    result = run_module("dinosr_espnet.bin.decode", "--asr_train_config", str(setup["config"]),
                        "--asr_model_file", str(setup["model"]), "--output_dir", str(setup["output"]),
                        "--test_sets", str(setup["dirs"][1]), "--lexicon", str(setup["tmp"] / "no_lexicon.txt"),
                        "--lm", str(setup["tmp"] / "missing.bin"), check=False)
    assert result.returncode == 2
    assert "--lexicon not found" in result.stderr and "no_lexicon.txt" in result.stderr


@pytest.mark.parametrize("module", ["dinosr_espnet.bin.decode", "dinosr_espnet.bin.score",
                                    "dinosr_espnet.bin.build_lm", "dinosr_espnet.bin.asr_inference"])
def test_commands_have_help(module):
    result = run_module(module, "--help")
    assert "usage: python -m " + module in result.stdout


@pytest.mark.parametrize("arguments, expected", [([], "auto"), (["--device", "cpu"], "cpu"),
                                                  (["--device", "cpu", "--ngpu", "1"], "cuda"),
                                                  (["--device", "cuda", "--ngpu", "0"], "cpu")])
def test_both_decoding_commands_pick_the_device_alike(arguments, expected):
    from dinosr_espnet.bin import asr_inference, decode
    from dinosr_espnet.decode.cli import requested_device

    required = ["--asr_train_config", "c.yaml", "--asr_model_file", "m.pth", "--output_dir", "out"]
    for parser, extra in ((decode.get_parser(), ["--test_sets", "dump/a"]), (asr_inference.get_parser(), [])):
        args = parser.parse_args(required + extra + arguments)
        assert requested_device(args) == expected


def test_search_table_is_resumed_only_for_the_same_emissions_and_lm(stored_setup):
    setup = stored_setup
    lm = build_test_lm(setup["tmp"], write_token_list(setup["tmp"] / "tokens.txt"))
    arguments = (setup["config"], setup["model"], setup["output"], setup["dirs"][:1], setup["decode_config"])
    table = setup["output"] / "lm_weight_search.tsv"
    run_decoding(*arguments, tune_set=setup["dirs"][0], lexicon=lm.lexicon, lm=lm.binary, model_loader=_no_model,
                 log=lambda *_: None)
    first = table.read_text()
    messages = []
    run_decoding(*arguments, tune_set=setup["dirs"][0], lexicon=lm.lexicon, lm=lm.binary, model_loader=_no_model,
                 log=messages.append)
    assert table.read_text() == first and not any(m.startswith("[search]") for m in messages)
    run_decoding(*arguments, tune_set=setup["dirs"][0], lexicon=lm.lexicon, lm=lm.arpa, model_loader=_no_model,
                 log=messages.append)
    assert any("starting afresh" in m for m in messages)
    assert len(table.read_text().splitlines()) == 1 + setup["decode_config"].search.budget
