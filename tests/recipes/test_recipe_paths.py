"""The tiny synthetic recipe, stages 1-2, from a repository whose path has a space and an apostrophe,
with a corpus path holding ':' and shell syntax; and the template's checks of names and option strings."""
import shutil
import subprocess
import sys

import pytest

from recipe_helpers import REPO_ROOT, make_scratch_recipe, run_bash, template_args

ODD_REPO = "it's a repo"
CORPUS = "corpus: $(touch PWNED) `touch PWNED`; touch PWNED"


def _copy_repo(root):
    """The tracked recipe files (copied, so every path resolves inside ``root``) and the package (linked)."""
    tracked = subprocess.run(["git", "ls-files", "egs", "utils"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    for name in tracked:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    (root / "dinosr_espnet").symlink_to(REPO_ROOT / "dinosr_espnet")
    venv = REPO_ROOT / ".venv"
    if venv.exists():
        (root / ".venv").symlink_to(venv)
    return root


@pytest.mark.timeout(600)
def test_tiny_recipe_stages_1_2_from_a_path_with_space_and_apostrophe(tmp_path):
    repo = _copy_repo(tmp_path / ODD_REPO)
    recipe = repo / "egs" / "synth" / "dinosr1"
    result = run_bash(["./run.sh", "--stage", "1", "--stop_stage", "2", "--test_sets", "test_clean",
                       "--finetune_splits", "10m", "--data_opts", f"--tiny true --corpus_dir '{CORPUS}'"],
                      cwd=recipe, timeout=560, env={"PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    wav_scp = (recipe / "data" / "test_clean" / "wav.scp").read_text()
    assert f"{ODD_REPO}/egs/synth/dinosr1/{CORPUS}/LibriSpeech/test-clean/" in wav_scp
    for name in ("train_960", "train_10m", "dev_clean", "dev_other", "test_clean"):
        assert (recipe / "dump" / name / "speech_shape").stat().st_size > 0, name
    assert not list(tmp_path.rglob("PWNED")), "a path was executed as a command"


def _template(tmp_path, *extra):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    return run_bash([*template_args("--stop_stage", "2", *extra)], cwd=recipe), recipe


@pytest.mark.parametrize("option,value", [("--test_sets", "test_clean it's"), ("--pretrain_set", "a b/c"),
                                          ("--tune_set", "$(touch PWNED)"), ("--finetune_splits", "10m;touch")])
def test_set_names_are_validated(tmp_path, option, value):
    result, recipe = _template(tmp_path, option, value)
    assert result.returncode != 0
    assert f"{option}:" in result.stderr and "is not a valid name" in result.stderr, result.stderr
    assert not list(tmp_path.rglob("PWNED")) and not (recipe / "data").exists()


def test_option_strings_are_split_like_a_shell_without_globbing_or_running(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    (recipe / "local" / "data.sh").write_text(
        "#!/usr/bin/env bash\nprintf '<%s>\\n' \"$@\" > args.txt\nmkdir -p data\ncp -r prepared/. data/\n")
    (recipe / "glob_me.txt").touch()
    result = run_bash([*template_args("--stop_stage", "1", "--data_opts",
                                      "--name 'two words' --star * --sub $(touch PWNED) --semi ;")], cwd=recipe)
    assert result.returncode == 0, result.stderr
    arguments = (recipe / "args.txt").read_text().splitlines()
    assert arguments == ["<--datadir>", "<data>", "<--nj>", "<2>", "<--name>", "<two words>", "<--star>", "<*>",
                         "<--sub>", "<$(touch>", "<PWNED)>", "<--semi>", "<;>"]
    assert not list(tmp_path.rglob("PWNED"))


def test_unbalanced_quote_in_an_option_string_is_named(tmp_path):
    result, recipe = _template(tmp_path, "--finetune_args", "--foo 'bar")
    assert result.returncode != 0
    assert "No closing quotation" in result.stderr and "finetune_args" in result.stderr
    assert not (recipe / "data").exists()
