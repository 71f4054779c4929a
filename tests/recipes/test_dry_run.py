"""--dry_run: print every command, validate every config, run nothing."""
import re

from recipe_helpers import REPO_ROOT, make_scratch_recipe, run_bash, template_args

LIBRISPEECH = REPO_ROOT / "egs" / "librispeech" / "dinosr1"


def test_dry_run_prints_every_stage_and_runs_nothing(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    result = run_bash(template_args("--stage", "1", "--stop_stage", "8", "--dry_run", "true",
                                    "--finetune_inits", "dinosr scratch", "--seeds", "1 2"), cwd=recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    for number in range(1, 9):
        assert f"Stage {number}:" in result.stdout
    for command in ("local/data.sh", "bin.format_data", "bin.dinosr_train", "bin.asr_train", "bin.build_lm",
                    "bin.decode", "bin.score", "bin.analyze_units"):
        assert command in result.stdout, command
    format_line = next(line for line in result.stdout.splitlines() if "bin.format_data" in line)
    # every set a later stage reads is formatted: pre-training validation, tuning, test, analysis sets
    assert "--eval_sets dev_clean\\ dev_other\\ test_clean " in format_line
    assert "--finetune_sets train_10m " in format_line
    assert result.stdout.count("bin.asr_train") == 4   # 2 inits x 2 seeds
    assert result.stdout.count("bin.decode") == 4
    assert "fake data.sh: would prepare data/" in result.stdout   # stage 1 shows local/data.sh's own dry run
    assert not (recipe / "data").exists() and not (recipe / "exp").exists()


def test_dry_run_fails_on_a_missing_or_broken_config(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    (recipe / "conf" / "decode.yaml").write_text("beam: [1, 2\n")
    broken = run_bash(template_args("--dry_run", "true"), cwd=recipe)
    assert broken.returncode != 0 and "conf/decode.yaml is not valid YAML" in broken.stderr
    (recipe / "conf" / "decode.yaml").unlink()
    missing = run_bash(template_args("--dry_run", "true"), cwd=recipe)
    assert missing.returncode != 0 and "conf/decode.yaml does not exist" in missing.stderr


def test_results_notes_are_passed_to_scoring_and_a_missing_file_is_named(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    (recipe / "local" / "tuning_notes.md").write_text("## What was tried\n")
    given = run_bash(template_args("--dry_run", "true", "--results_notes", "local/tuning_notes.md"), cwd=recipe)
    assert given.returncode == 0, given.stdout + given.stderr
    score_line = next(line for line in given.stdout.splitlines() if "bin.score" in line)
    assert "--notes local/tuning_notes.md" in score_line
    missing = run_bash(template_args("--dry_run", "true", "--results_notes", "local/absent.md"), cwd=recipe)
    assert missing.returncode != 0 and "--results_notes local/absent.md does not exist" in missing.stderr


def test_official_checkpoint_skips_pretraining(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    result = run_bash(template_args("--stage", "3", "--stop_stage", "4", "--dry_run", "true",
                                    "--pretrained_model", "dinosr.ckpt", "--finetune_inits", "official"),
                      cwd=recipe)
    assert result.returncode == 0, result.stderr
    assert "bin.dinosr_train" not in result.stdout
    assert "bin.import_fairseq dinosr.ckpt exp/pretrain_official/model.pth" in result.stdout
    assert "--pretrained_model exp/pretrain_official/model.pth" in result.stdout  # a plain path, no YAML


def test_librispeech_dry_run_validates_every_config(tmp_path):
    """The paper recipe, stages 1-7, printed: every config it names exists and parses."""
    recipe = tmp_path / "librispeech"
    recipe.mkdir()
    for name in ("run.sh", "path.sh", "cmd.sh", "conf", "local", "db.sh"):
        if (LIBRISPEECH / name).exists():
            (recipe / name).symlink_to(LIBRISPEECH / name)
    result = run_bash(["./run.sh", "--stage", "1", "--stop_stage", "7", "--dry_run", "true"], cwd=recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    configs = set(re.findall(r"(conf/\S+\.yaml)", result.stdout))
    assert {"conf/pretrain_dinosr_base.yaml", "conf/decode.yaml"} <= configs
    assert {f"conf/finetune_ctc_{split}.yaml" for split in ("10m", "1h", "10h", "100h")} <= configs
    for config in configs:
        assert (recipe / config).is_file(), config
    assert "--arpa data/local/lm/official_4gram.arpa.gz" in result.stdout
    assert "would prepare data/" in result.stdout + result.stderr   # local/data.sh ran its own dry run


def test_random_inits_per_init_options_and_eval_subsets(tmp_path):
    """scratch* inits are random inits with scratch_args plus their own --finetune_init_args entry;
    an --eval_subsets set is cut in stage 2 (not read from data/) and decoded like a test set."""
    recipe = make_scratch_recipe(tmp_path / "recipe")
    result = run_bash(template_args(
        "--stage", "2", "--stop_stage", "6", "--dry_run", "true", "--finetune_inits", "dinosr scratch scratch3x",
        "--test_sets", "test_clean train_fit", "--eval_subsets", "train_fit:train_10m:100",
        "--scratch_args", "--encoder_conf freeze_finetune_updates=0",
        "--finetune_init_args", "scratch3x: --max_epoch 24 --scheduler_conf max_steps=1200; dinosr: --seed_note x"),
        cwd=recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    format_line = next(line for line in result.stdout.splitlines() if "bin.format_data" in line)
    assert "--subsets train_fit:train_10m:100" in format_line
    assert "train_fit" not in format_line.split("--eval_sets ")[1].split(" --subsets")[0]
    train_lines = {init: next(line for line in result.stdout.splitlines()
                              if "bin.asr_train" in line and f"finetune_{init}_10m_seed1 " in line)
                   for init in ("dinosr", "scratch", "scratch3x")}
    assert "pretrained_model" not in train_lines["scratch3x"]
    assert "--encoder_conf freeze_finetune_updates=0 --max_epoch 24 --scheduler_conf max_steps=1200" \
        in train_lines["scratch3x"]
    assert "--max_epoch 24" not in train_lines["scratch"] and "freeze_finetune_updates=0" in train_lines["scratch"]
    assert "--pretrained_model exp/pretrain_dinosr/model.pth --seed_note x" in train_lines["dinosr"]
    decode_line = next(line for line in result.stdout.splitlines() if "bin.decode" in line)
    assert "--test_sets dump/test_clean\\ dump/train_fit" in decode_line
    bad = run_bash(template_args("--dry_run", "true", "--finetune_init_args", "--max_epoch 3"), cwd=recipe)
    assert bad.returncode != 0 and "is not 'INIT: OPTIONS'" in bad.stderr


def test_librispeech_dry_run_names_each_tags_own_pretraining_config(tmp_path):
    recipe = tmp_path / "librispeech"
    recipe.mkdir()
    for name in ("run.sh", "path.sh", "cmd.sh", "conf", "local", "db.sh"):
        if (LIBRISPEECH / name).exists():
            (recipe / name).symlink_to(LIBRISPEECH / name)
    result = run_bash(["./run.sh", "--stage", "3", "--stop_stage", "3", "--dry_run", "true",
                       "--pretrain_tags", "dinosr data2vec"], cwd=recipe)
    assert result.returncode == 0, result.stdout + result.stderr
    trainings = [line for line in result.stdout.splitlines() if "bin.dinosr_train" in line]
    assert len(trainings) == 2
    assert "conf/pretrain_dinosr_base.yaml" in trainings[0] and "exp/pretrain_dinosr" in trainings[0]
    assert "conf/pretrain_data2vec_base.yaml" in trainings[1] and "exp/pretrain_data2vec" in trainings[1]


def test_pretraining_config_whose_model_is_not_the_tag_is_an_error(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    (recipe / "conf" / "pretrain_data2vec.yaml").write_text("model: dinosr\nmax_epoch: 1\n")
    result = run_bash(template_args("--stage", "3", "--stop_stage", "3", "--dry_run", "true",
                                    "--pretrain_tags", "dinosr data2vec"), cwd=recipe)
    assert result.returncode != 0
    assert "conf/pretrain_data2vec.yaml: 'model: dinosr' but the tag is 'data2vec'" in result.stderr
    (recipe / "conf" / "pretrain_data2vec.yaml").write_text("model: data2vec\nmax_epoch: 1\n")
    fixed = run_bash(template_args("--stage", "3", "--stop_stage", "3", "--dry_run", "true",
                                   "--pretrain_tags", "dinosr data2vec"), cwd=recipe)
    assert fixed.returncode == 0, fixed.stderr


def test_fine_tuning_on_a_split_stage_2_did_not_format_is_named_before_training(tmp_path):
    recipe = make_scratch_recipe(tmp_path / "recipe")
    (recipe / "dump" / "dev_other").mkdir(parents=True)
    (recipe / "dump" / "dev_other" / "speech_shape").write_text("utt 16000\n")
    result = run_bash(template_args("--stage", "4", "--stop_stage", "4", "--finetune_inits", "scratch",
                                    "--finetune_splits", "10m"), cwd=recipe)
    assert result.returncode != 0
    assert "fine-tuning on 10m (run stage 2 with this --finetune_splits first)" in result.stderr
    assert "dump/train_10m/speech_shape" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not (recipe / "exp" / "finetune_scratch_10m_seed1").exists()
