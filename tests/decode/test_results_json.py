"""Stage 7's RESULTS.json, the DinoSR vs data2vec / scratch3x tables and the pre-training curves, from a
fake experiment tree whose expected numbers are worked out by hand below."""
import json

from conftest import run_module

from dinosr_espnet.decode.results_table import write_results

TRAIN_LOG = """\
[host] 2026-01-01 10:00:00,000 (trainer:330) INFO: 1/2epoch started
[host] 2026-01-01 10:00:05,000 (trainer:762) INFO: 1epoch:train:1-10batch: loss=4.800, target_ppl=20.000, active_codewords=22.000, active_codewords_0=20.000, active_codewords_1=24.000, optim0_lr0=1.000e-04
[host] 2026-01-01 10:00:10,000 (trainer:762) INFO: 1epoch:train:11-20batch: loss=4.100, target_ppl=30.500, active_codewords=27.500, active_codewords_0=25.000, active_codewords_1=30.000, optim0_lr0=2.000e-04
"""


def _score(exp_root, init, split, seed, data_set, mode, wer, cer):
    directory = exp_root / f"finetune_{init}_{split}_seed{seed}" / "decode" / data_set / mode
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "score.json").write_text(json.dumps({"wer": wer, "cer": cer}))


def _config(exp_root, init, split, seed, max_epoch, iterations, accum_grad=1):
    (exp_root / f"finetune_{init}_{split}_seed{seed}" / "config.yaml").write_text(
        f"max_epoch: {max_epoch}\nnum_iters_per_epoch: {iterations}\naccum_grad: {accum_grad}\nseed: {seed}\n")


def _tree(tmp_path):
    exp_root = tmp_path / "recipe" / "exp"
    for seed, (viterbi_wer, viterbi_cer, lm_wer, lm_cer, fit_wer) in {
            1: (60.0, 30.0, 40.0, 21.0, 10.0), 2: (50.0, 20.0, 44.0, 19.0, 20.0)}.items():
        _score(exp_root, "dinosr", "1h", seed, "test_clean", "viterbi", viterbi_wer, viterbi_cer)
        _score(exp_root, "dinosr", "1h", seed, "test_clean", "4gram", lm_wer, lm_cer)
        _score(exp_root, "dinosr", "1h", seed, "train_fit", "viterbi", fit_wer, fit_wer / 2)
        _config(exp_root, "dinosr", "1h", seed, 8, 50)
    for seed, wer in ((1, 50.0), (2, 70.0)):
        _score(exp_root, "data2vec", "1h", seed, "test_clean", "4gram", wer, None)   # a score without CER
        _config(exp_root, "data2vec", "1h", seed, 8, 50, accum_grad=2)
    for seed, wer in ((1, 80.0), (2, 90.0)):
        _score(exp_root, "scratch", "1h", seed, "test_clean", "4gram", wer, 50.0)
    _score(exp_root, "scratch3x", "1h", 1, "test_clean", "4gram", 63.0, 40.0)
    _config(exp_root, "scratch3x", "1h", 1, 24, 50)
    _score(exp_root, "dinosr", "10m", 1, "test_clean", "viterbi", 90.0, 70.0)
    (exp_root / "pretrain_dinosr").mkdir()
    (exp_root / "pretrain_dinosr" / "train.log").write_text(TRAIN_LOG)
    return exp_root


def _row(rows, split, init, test_set, decode):
    matches = [row for row in rows if (row["split"], row["init"], row["test_set"], row["decode"])
               == (split, init, test_set, decode)]
    assert len(matches) == 1, (split, init, test_set, decode)
    return matches[0]


def test_results_json_rows_are_means_over_seeds_with_the_finetuning_updates(tmp_path):
    exp_root = _tree(tmp_path)
    output = exp_root.parent / "RESULTS.md"
    run_module("dinosr_espnet.bin.score", "--exp_root", str(exp_root), "--output", str(output))
    rows = json.loads((exp_root.parent / "RESULTS.json").read_text())
    assert not (exp_root.parent / "RESULTS.json.tmp").exists()
    assert all(set(row) == {"split", "init", "test_set", "decode", "wer", "cer", "seeds", "finetune_updates"}
               for row in rows)
    assert len(rows) == 7
    # dinosr 1h test_clean viterbi: WER (60 + 50) / 2 = 55, CER (30 + 20) / 2 = 25; 8 epochs x 50 updates
    assert _row(rows, "1h", "dinosr", "test_clean", "viterbi") == {
        "split": "1h", "init": "dinosr", "test_set": "test_clean", "decode": "viterbi",
        "wer": 55.0, "cer": 25.0, "seeds": [1, 2], "finetune_updates": 400}
    lm = _row(rows, "1h", "dinosr", "test_clean", "4gram")
    assert (lm["wer"], lm["cer"]) == (42.0, 20.0)                   # (40 + 44) / 2, (21 + 19) / 2
    assert _row(rows, "1h", "dinosr", "train_fit", "viterbi")["wer"] == 15.0
    data2vec = _row(rows, "1h", "data2vec", "test_clean", "4gram")
    assert (data2vec["wer"], data2vec["cer"], data2vec["finetune_updates"]) == (60.0, None, 200)  # accum_grad 2
    scratch3x = _row(rows, "1h", "scratch3x", "test_clean", "4gram")
    assert (scratch3x["seeds"], scratch3x["finetune_updates"]) == ([1], 1200)
    assert _row(rows, "1h", "scratch", "test_clean", "4gram")["finetune_updates"] is None   # no config.yaml
    # order of the tables: split (10m first), init (scratch, scratch3x, data2vec, dinosr), set, decoding
    assert [(row["split"], row["init"]) for row in rows][:3] == [("10m", "dinosr"), ("1h", "scratch"), ("1h", "scratch3x")]
    assert [row["decode"] for row in rows if (row["split"], row["init"], row["test_set"])
            == ("1h", "dinosr", "test_clean")] == ["viterbi", "4gram"]


def test_results_md_compares_dinosr_with_data2vec_and_with_scratch_given_3x(tmp_path):
    exp_root = _tree(tmp_path)
    output = exp_root.parent / "RESULTS.md"
    write_results(exp_root, output)
    text = output.read_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| split | init | test-clean viterbi"))
    assert header == "| split | init | test-clean viterbi | test-clean 4gram | train-fit viterbi | train-fit 4gram |"
    assert "## DinoSR against data2vec: relative WER reduction (%)" in text
    # 4gram: data2vec mean 60, dinosr mean 42 -> 100 * (60 - 42) / 60 = +30.0; no data2vec viterbi: "-"
    assert "| 1h | dinosr vs data2vec | - | +30.0 | - | - |" in lines
    # against scratch3x (one seed, 63): 100 * (63 - 42) / 63 = +33.3; data2vec: 100 * (63 - 60) / 63 = +4.8
    assert "| 1h | dinosr vs scratch3x | - | +33.3 | - | - |" in lines
    assert "| 1h | data2vec vs scratch3x | - | +4.8 | - | - |" in lines
    # against scratch (80 + 90) / 2 = 85: scratch3x 100 * (85 - 63) / 85 = +25.9
    assert "| 1h | scratch3x vs scratch | - | +25.9 | - | - |" in lines
    assert not any("data2vec vs data2vec" in line or "scratch vs scratch3x" in line for line in lines)


def test_pretraining_curves_are_drawn_copied_beside_results_md_and_linked(tmp_path):
    exp_root = _tree(tmp_path)
    output = exp_root.parent / "RESULTS.md"
    write_results(exp_root, output)
    picture = exp_root / "pretrain_dinosr" / "training_curves.png"
    copy = exp_root.parent / "RESULTS_figures" / "pretrain_dinosr_training_curves.png"
    assert picture.stat().st_size > 5000 and copy.read_bytes() == picture.read_bytes()
    assert not list(exp_root.parent.rglob("*.tmp*"))
    row = next(line for line in output.read_text().splitlines() if line.startswith("| dinosr | 20 |"))
    # last interval: loss 4.1, target_ppl 30.5; layers 0 and 1 went 20 -> 25 and 24 -> 30 active codewords
    assert row == ("| dinosr | 20 | 4.100 | 30.50 | 20 → 25 / 24 → 30 | - | "
                   "[curves](RESULTS_figures/pretrain_dinosr_training_curves.png) |")


def test_no_data2vec_rows_means_no_data2vec_table(tmp_path):
    exp_root = tmp_path / "exp"
    _score(exp_root, "dinosr", "1h", 1, "test_clean", "4gram", 40.0, 20.0)
    _score(exp_root, "scratch", "1h", 1, "test_clean", "4gram", 80.0, 50.0)
    output = tmp_path / "RESULTS.md"
    write_results(exp_root, output)
    text = output.read_text()
    assert "vs data2vec" not in text and "vs scratch3x" not in text and "## Pre-training" not in text
    assert "| 1h | dinosr vs scratch | +50.0 |" in text
