"""RESULTS.md from an experiment tree: paper layout, mean and spread over seeds, paper rows."""
import json

from conftest import run_module

from dinosr_espnet.decode.results_table import collect_scores, metric_table


def _write_score(exp_root, tag, split, seed, data_set, mode, wer, cer):
    directory = exp_root / f"finetune_{tag}_{split}_seed{seed}" / "decode" / data_set / mode
    directory.mkdir(parents=True)
    (directory / "score.json").write_text(json.dumps({"wer": wer, "cer": cer}))


def _experiment_tree(tmp_path):
    exp_root = tmp_path / "exp"
    for seed, offset in ((1, 0.0), (2, 2.0)):
        for data_set in ("test_other", "dev_clean"):
            _write_score(exp_root, "dinosr", "10m", seed, data_set, "viterbi", 50.0 + offset, 20.0 + offset)
            _write_score(exp_root, "dinosr", "10m", seed, data_set, "4gram", 30.0 + offset, 15.0)
        _write_score(exp_root, "scratch", "10m", seed, "dev_clean", "viterbi", 90.0 + offset, 60.0)
    (exp_root / "pretrain_dinosr").mkdir()  # not a fine-tuning run: ignored
    return exp_root


def test_scores_are_collected_from_exp_dir_names(tmp_path):
    scores = collect_scores(_experiment_tree(tmp_path))
    assert len(scores) == 10
    assert {(s.tag, s.split) for s in scores} == {("dinosr", "10m"), ("scratch", "10m")}
    assert {s.seed for s in scores} == {1, 2}


def test_table_has_paper_column_order_and_mean_over_seeds(tmp_path):
    lines = metric_table(collect_scores(_experiment_tree(tmp_path)), "wer", None)
    assert lines[0] == ("| split | init | dev-clean viterbi | dev-clean 4gram | test-other viterbi | "
                        "test-other 4gram |")
    scratch_row, dinosr_row = lines[2], lines[3]
    assert scratch_row.startswith("| 10m | scratch | 91.0 ± 1.4 (n=2) | - |")
    assert dinosr_row.startswith("| 10m | dinosr | 51.0 ± 1.4 (n=2) | 31.0 ± 1.4 (n=2) |")


def test_score_command_writes_results_md_with_provenance_and_paper_rows(tmp_path):
    exp_root = _experiment_tree(tmp_path)
    output = tmp_path / "RESULTS.md"
    run_module("dinosr_espnet.bin.score", "--exp_root", str(exp_root), "--output", str(output),
               "--paper_table", "librispeech")
    text = output.read_text()
    assert "- git: " in text and "espnet 202511" in text and "- date: " in text
    assert "## WER (%)" in text and "## CER (%)" in text
    paper_row = next(line for line in text.splitlines() if "DinoSR (paper)" in line)
    assert paper_row.split("|")[-2].strip() == "11.8"  # test-other 4gram, 10 min


def test_score_command_scores_one_set(tmp_path):
    (tmp_path / "ref").write_text("u1 THE CAT SAT\nu2 A DOG\n")
    (tmp_path / "hyp").write_text("u2 A DOG\nu1 THE BAT\n")
    result = run_module("dinosr_espnet.bin.score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"),
                        "--output_dir", str(tmp_path / "out"))
    assert json.loads(result.stdout.strip().splitlines()[-1])["wer"] == 40.0
    assert (tmp_path / "out" / "hyp.trn").read_text().splitlines()[0] == "THE BAT (u1-u1)"
