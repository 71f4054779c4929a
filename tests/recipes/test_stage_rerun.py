"""The template's completion markers: finished stages are skipped, failed ones are redone."""
from recipe_helpers import make_scratch_recipe, run_bash, template_args


def stage_1_and_2(recipe, env=None):
    return run_bash(template_args("--stage", "1", "--stop_stage", "2"), cwd=recipe, env=env)


def test_rerun_of_finished_stages_does_nothing(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    first = stage_1_and_2(recipe)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Stage 1: data preparation" in first.stdout and "Stage 2: formatting" in first.stdout
    assert (recipe / "data" / ".done").is_file() and (recipe / "dump" / ".done").is_file()
    assert (recipe / "dump" / "train_10m" / "text_shape.char").is_file()
    dump_time = (recipe / "dump" / "train_960" / "wav.scp").stat().st_mtime_ns
    second = stage_1_and_2(recipe)
    assert second.returncode == 0, second.stderr
    assert "data is done already" in second.stdout and "dump is done already" in second.stdout
    assert (recipe / "data_sh_runs.txt").read_text().count("run") == 1
    assert (recipe / "dump" / "train_960" / "wav.scp").stat().st_mtime_ns == dump_time


def test_failed_stage_is_not_marked_done_and_runs_again(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    failed = stage_1_and_2(recipe, env={"FAKE_DATA_FAIL": "1"})
    assert failed.returncode != 0
    assert "failing on purpose" in failed.stderr and "data/log/data.log" in failed.stderr
    assert not (recipe / "data" / ".done").exists()
    assert not (recipe / "dump").exists()
    again = stage_1_and_2(recipe)
    assert again.returncode == 0, again.stderr
    assert (recipe / "data_sh_runs.txt").read_text().count("run") == 2


def test_done_marker_records_the_command(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    assert stage_1_and_2(recipe).returncode == 0
    marker = (recipe / "dump" / ".done").read_text()
    assert "dinosr_espnet.bin.format_data" in marker and "--pretrain_sets train_960" in marker
