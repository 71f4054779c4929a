"""The synthetic demo's comparison configs: data2vec and DinoSR-with-re-seeding at DinoSR's budget, and the
complete comparison (run_full.sh, `make demo-full`) printed by a dry run."""
import re

import yaml

from recipe_helpers import REPO_ROOT, run_bash

from dinosr_espnet.nets.config import DinoSRConfig

SYNTH = REPO_ROOT / "egs" / "synth" / "dinosr1"
# What may differ between the methods; everything else (architecture, data, optimiser, updates) may not.
DINOSR_ONLY = {"codebook_size", "codebook_decay"}
DATA2VEC_OWN = {"loss_beta", "loss_scale", "mask_prob"}


def _load(name):
    return yaml.safe_load((SYNTH / "conf" / name).read_text())


def _without(config, model_keys):
    rest = {key: value for key, value in config.items() if key not in ("model", "model_conf")}
    model_conf = {key: value for key, value in config["model_conf"].items() if key not in model_keys}
    return rest, model_conf


def test_data2vec_demo_has_the_dinosr_demo_architecture_batch_and_updates():
    dinosr, data2vec = _load("pretrain_dinosr_demo.yaml"), _load("pretrain_data2vec_demo.yaml")
    assert (dinosr["model"], data2vec["model"]) == ("dinosr", "data2vec")
    assert _without(data2vec, DATA2VEC_OWN | DINOSR_ONLY) == _without(dinosr, DATA2VEC_OWN | DINOSR_ONLY)
    assert data2vec["model_conf"]["mask_prob"] == 0.65          # data2vec's own masking (official)
    DinoSRConfig.from_dict(data2vec["model_conf"])               # every key is a known field


def test_reseed_demo_is_the_dinosr_demo_plus_the_remedy_only():
    dinosr, reseed = _load("pretrain_dinosr_demo.yaml"), _load("pretrain_dinosr_reseed_demo.yaml")
    remedy = {"codebook_reseed_after", "codebook_init_from_targets"}
    assert _without(reseed, remedy) == _without(dinosr, remedy)
    assert reseed["model"] == "dinosr" and reseed["model_conf"]["codebook_reseed_after"] > 0
    assert DinoSRConfig.from_dict(reseed["model_conf"]).codebook_reseed_after == reseed["model_conf"]["codebook_reseed_after"]


def _recipe_copy(tmp_path):
    recipe = tmp_path / "synth"
    recipe.mkdir()
    for name in ("run.sh", "run_full.sh", "path.sh", "cmd.sh", "conf", "local", "db.sh"):
        if (SYNTH / name).exists():
            (recipe / name).symlink_to(SYNTH / name)
    return recipe


def test_full_comparison_dry_run_lists_every_init_split_and_seed(tmp_path):
    result = run_bash(["./run_full.sh", "--stage", "2", "--stop_stage", "7", "--dry_run", "true"],
                      cwd=_recipe_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    pretraining = re.findall(r"bin\.dinosr_train --config (\S+)", out)
    assert pretraining == ["conf/pretrain_dinosr_demo.yaml", "conf/pretrain_data2vec_demo.yaml",
                           "conf/pretrain_dinosr_reseed_demo.yaml"]
    runs = set(re.findall(r"--output_dir exp/(finetune_\S+_seed\d)", out))
    assert runs == {f"finetune_{init}_{split}_seed{seed}" for init in
                    ("scratch", "scratch3x", "data2vec", "dinosr", "dinosr_reseed")
                    for split in ("10m", "1h") for seed in (1, 2)}
    scratch3x = [line for line in out.splitlines() if "bin.asr_train" in line and "finetune_scratch3x_" in line]
    # 3x the demo fine-tuning: 24 x 50 = 1200 updates, the schedule stretched to match
    assert all("--max_epoch 24 --scheduler_conf max_steps=1200" in line and "pretrained_model" not in line
               for line in scratch3x)
    finetune = _load("finetune_ctc_demo.yaml")
    assert finetune["max_epoch"] * finetune["num_iters_per_epoch"] * 3 == 1200 == 3 * finetune["scheduler_conf"]["max_steps"]
    format_line = next(line for line in out.splitlines() if "bin.format_data" in line)
    assert "--finetune_sets train_10m\\ train_1h" in format_line and "--subsets train_fit:train_10m:100" in format_line
    decode_lines = [line for line in out.splitlines() if "bin.decode" in line]
    assert len(decode_lines) == 20 and all("dump/train_fit" in line for line in decode_lines)


def test_demo_stays_the_subset_plus_train_fit(tmp_path):
    result = run_bash(["./run.sh", "--stage", "3", "--stop_stage", "6", "--dry_run", "true"],
                      cwd=_recipe_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    runs = set(re.findall(r"--output_dir exp/(finetune_\S+_seed\d)", result.stdout))
    assert runs == {f"finetune_{init}_1h_seed{seed}" for init in ("dinosr", "scratch") for seed in (1, 2)}
    assert re.findall(r"bin\.dinosr_train --config (\S+)", result.stdout) == ["conf/pretrain_dinosr_demo.yaml"]
    assert "dump/train_fit" in next(line for line in result.stdout.splitlines() if "bin.decode" in line)
