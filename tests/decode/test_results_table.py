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


def test_notes_file_is_appended_after_the_tables(tmp_path):
    exp_root = _experiment_tree(tmp_path)
    notes = tmp_path / "tuning_notes.md"
    notes.write_text("## What was tried\n\n| run | CER |\n|---|---|\n| lr 3e-4 | 78.6 |\n")
    output = tmp_path / "RESULTS.md"
    run_module("dinosr_espnet.bin.score", "--exp_root", str(exp_root), "--output", str(output),
               "--notes", str(notes))
    text = output.read_text()
    assert text.index("## How this was run") < text.index("## What was tried")
    assert "| lr 3e-4 | 78.6 |" in text


def test_missing_notes_file_is_named_and_results_md_is_kept(tmp_path):
    exp_root = _experiment_tree(tmp_path)
    output = tmp_path / "RESULTS.md"
    output.write_text("earlier results\n")
    result = run_module("dinosr_espnet.bin.score", "--exp_root", str(exp_root), "--output", str(output),
                        "--notes", str(tmp_path / "absent.md"), check=False)
    assert result.returncode == 2
    assert "absent.md" in result.stderr
    assert output.read_text() == "earlier results\n"


def test_score_command_scores_one_set(tmp_path):
    (tmp_path / "ref").write_text("u1 THE CAT SAT\nu2 A DOG\n")
    (tmp_path / "hyp").write_text("u2 A DOG\nu1 THE BAT\n")
    result = run_module("dinosr_espnet.bin.score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"),
                        "--output_dir", str(tmp_path / "out"))
    assert json.loads(result.stdout.strip().splitlines()[-1])["wer"] == 40.0
    assert (tmp_path / "out" / "hyp.trn").read_text().splitlines()[0] == "THE BAT (u1-u1)"


def test_relative_gain_is_computed_against_scratch_of_the_same_split(tmp_path):
    from dinosr_espnet.decode.results_table import relative_gain_table

    lines = relative_gain_table(collect_scores(_experiment_tree(tmp_path)), "wer")
    # dev-clean viterbi: scratch mean 91, dinosr mean 51 -> +44.0 %; no scratch 4gram / test-other: "-"
    assert lines[2] == "| 10m | dinosr vs scratch | +44.0 | - | - | - |"
    assert len(lines) == 3


def test_stage_times_sum_every_attempt_including_killed_ones(tmp_path):
    from dinosr_espnet.decode.run_summary import stage_time_lines

    (tmp_path / "stage_times.tsv").write_text(
        "1\t60\tfinished\t2026-01-01T00:01:00\n"
        "3\t90\tstopped (exit 143)\t2026-01-01T00:02:30\n"
        "3\t150\tfinished\t2026-01-01T00:05:00\n")
    lines = stage_time_lines(tmp_path)
    assert lines[2] == "| 1 data | 1 | 1.0 min |"
    assert lines[3] == "| 3 pre-train | 2 (stopped (exit 143), finished) | 4.0 min |"
    assert lines[-1] == "| total | | 5.0 min |"


def test_bad_stage_times_line_is_named(tmp_path):
    import pytest

    from dinosr_espnet.decode.run_summary import stage_time_lines

    (tmp_path / "stage_times.tsv").write_text("1\t60\n")
    with pytest.raises(ValueError, match="stage_times.tsv:1"):
        stage_time_lines(tmp_path)


def test_results_md_compares_trained_and_random_init_units(tmp_path):
    exp_root = _experiment_tree(tmp_path)
    for name, random_init, pnmi in (("units_dev_clean", False, 0.41), ("units_dev_clean_random_init", True, 0.12)):
        directory = exp_root / "pretrain_dinosr" / name
        directory.mkdir(parents=True)
        row = {"layer": 4, "units": "codebook", "active_codewords": 100, "codebook_size": 128,
               "code_perplexity": 60.0, "cluster_purity": 0.2, "phone_purity": 0.5, "pnmi": pnmi}
        (directory / "units.json").write_text(json.dumps(
            {"random_init": random_init, "data_dir": "dump/dev_clean", "results": [row]}))
    (exp_root / "commands.log").write_text("2026-01-01T00:00:00\tstages 1-8\t./run.sh --stop_stage 8\n")
    output = tmp_path / "RESULTS.md"
    run_module("dinosr_espnet.bin.score", "--exp_root", str(exp_root), "--output", str(output))
    text = output.read_text()
    assert "| dinosr | trained | dev_clean | 4 | 0.410 | - | - | 0.500 | 0.200 | 100 / 128 |" in text
    assert "| dinosr | random init | dev_clean | 4 | 0.120 |" in text
    assert "`./run.sh --stop_stage 8`" in text and "- machine: " in text
