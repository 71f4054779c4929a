"""The synthetic recipe end to end, stages 1-8, at the smallest sizes (runs in `make test`)."""
import json
import time

import pytest
import yaml

from recipe_helpers import REPO_ROOT, run_bash

SYNTH = REPO_ROOT / "egs" / "synth" / "dinosr1"
TINY = ["--data_opts", "--tiny true", "--seeds", "1",
        "--pretrain_config", "conf/pretrain_{tag}_tiny.yaml", "--finetune_config", "conf/finetune_ctc_tiny.yaml", "--finetune_splits", "10m",
        "--finetune_inits", "dinosr scratch", "--test_sets", "test_clean train_fit", "--tune_set", "dev_other",
        "--pretrain_args", "--max_epoch 1 --num_iters_per_epoch 3 --log_interval 1",
        "--finetune_args", "--max_epoch 1 --num_iters_per_epoch 3"]
FINETUNE_DIRS = ("exp/finetune_dinosr_10m_seed1", "exp/finetune_scratch_10m_seed1")


BOOKKEEPING = {"exp/commands.log", "exp/stage_times.tsv"}  # every run appends its command and stage times


def snapshot(root):
    """Path -> modification time of every file under root (what a re-run must leave alone)."""
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in root.rglob("*")
            if path.is_file() and str(path.relative_to(root)) not in BOOKKEEPING}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_synth_recipe_runs_all_stages_and_reruns_as_a_no_op(tmp_path):
    recipe = tmp_path / "synth"
    recipe.mkdir()
    for name in ("run.sh", "path.sh", "cmd.sh", "conf", "local", "db.sh"):
        if (SYNTH / name).exists():
            (recipe / name).symlink_to(SYNTH / name)
    result = run_bash(["./run.sh", "--stage", "1", "--stop_stage", "8", *TINY], cwd=recipe, timeout=560)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    for number in range(1, 9):
        assert f"Stage {number}:" in result.stdout

    # stage 1: Kaldi data dirs and LM text
    for name in ("train_960", "train_10m", "dev_other", "test_clean"):
        assert (recipe / "data" / name / "wav.scp").stat().st_size > 0, name
    assert (recipe / "data" / "local" / "lm" / "lm_text.txt").stat().st_size > 0
    # stage 2: dump copies with shapes, token list
    tokens = (recipe / "data" / "token_list" / "char" / "tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>"
    for name in ("train_960", "train_10m", "dev_other", "test_clean"):
        assert (recipe / "dump" / name / "speech_shape").stat().st_size > 0, name
    assert (recipe / "dump" / "train_10m" / "text_shape.char").read_text().split()[1].endswith(f",{len(tokens)}")
    # train_fit: utterances of the labelled train_10m itself (the tiny one has fewer than 100: all of them)
    fit_ids = (recipe / "dump" / "train_fit" / "wav.scp").read_text().split("\n")[0].split()[:1]
    assert fit_ids and fit_ids[0] in (recipe / "dump" / "train_10m" / "wav.scp").read_text()
    # stage 3: pre-trained model and its config
    pretrain = recipe / "exp" / "pretrain_dinosr"
    assert (pretrain / "model.pth").stat().st_size > 0
    assert yaml.safe_load((pretrain / "config.yaml").read_text())["model"] == "dinosr"
    # stage 4: one fine-tuned model per init
    for directory in FINETUNE_DIRS:
        assert (recipe / directory / "valid.cer_ctc.best.pth").stat().st_size > 0, directory
    assert "--pretrained_model exp/pretrain_dinosr/model.pth" in (recipe / FINETUNE_DIRS[0] / ".done").read_text()
    assert "pretrained_model" not in (recipe / FINETUNE_DIRS[1] / ".done").read_text()
    # stage 5: LM and lexicon
    assert (recipe / "data" / "local" / "lm" / "4gram.bin").stat().st_size > 0
    assert (recipe / "data" / "local" / "lm" / "lexicon.txt").stat().st_size > 0
    # stage 6: both decoding modes on the test set
    for directory in FINETUNE_DIRS:
        for mode in ("viterbi", "4gram"):
            output = recipe / directory / "decode" / "test_clean" / mode
            assert (output / "hyp.trn").is_file() and (output / "ref.trn").is_file(), output
            assert json.loads((output / "score.json").read_text()), output
    # stage 7: the results table, printed and written
    results = (recipe / "RESULTS.md").read_text()
    assert "| 10m | scratch |" in results and "| 10m | dinosr |" in results
    assert "WER" in results and "CER" in results
    assert "| 10m | dinosr vs scratch |" in results
    rows = json.loads((recipe / "RESULTS.json").read_text())
    assert {(row["init"], row["test_set"], row["decode"]) for row in rows} == {
        (init, test_set, decode) for init in ("dinosr", "scratch") for test_set in ("test_clean", "train_fit")
        for decode in ("viterbi", "4gram")}
    assert {row["finetune_updates"] for row in rows} == {3} and {row["split"] for row in rows} == {"10m"}
    # pre-training curves, drawn in exp/ and copied beside RESULTS.md, which links them
    assert (pretrain / "training_curves.png").stat().st_size > 0
    assert (recipe / "RESULTS_figures" / "pretrain_dinosr_training_curves.png").is_file()
    assert "](RESULTS_figures/pretrain_dinosr_training_curves.png)" in results
    # the console showed the pre-training's progress (the full log is train.log)
    assert "[exp/pretrain_dinosr] update 3/3 (100%), loss " in result.stdout
    # stage 8: units of the trained model and of its random-init twin, compared in RESULTS.md
    for name in ("units_dev_clean", "units_dev_clean_random_init"):
        assert json.loads((pretrain / name / "units.json").read_text())["results"], name
    assert "| dinosr | trained | dev_clean |" in results and "| dinosr | random init | dev_clean |" in results
    # how it was run: the command as typed and one timed attempt per stage
    assert "`./run.sh --stage 1 --stop_stage 8 --data_opts" in results
    # the recipe's record of what was tried (local/tuning_notes.md) closes RESULTS.md
    assert results.rstrip().endswith((SYNTH / "local" / "tuning_notes.md").read_text().rstrip())
    stage_times = [line.split("\t") for line in (recipe / "exp" / "stage_times.tsv").read_text().splitlines()]
    assert [row[0] for row in stage_times] == [str(number) for number in range(1, 9)]
    assert {row[2] for row in stage_times} == {"finished"}

    before = snapshot(recipe)
    time.sleep(0.01)
    started = time.monotonic()
    rerun = run_bash(["./run.sh", "--stage", "1", "--stop_stage", "8", *TINY], cwd=recipe, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert rerun.stdout.count("done already") >= 9
    assert "running (log:" not in rerun.stdout
    assert snapshot(recipe) == before
    assert time.monotonic() - started < 30
