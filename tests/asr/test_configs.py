"""The paper's CTC fine-tuning configs: values of dinosr_spec.md section 3, valid for ESPnet's parser."""
import inspect
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import REPO_ROOT
from dinosr_espnet.asr.encoder import DinoSREncoder

CONF = REPO_ROOT / "conf"
SPLITS = ("10m", "1h", "10h", "100h")
# fairseq examples/wav2vec/config/finetuning/base_{split}.yaml (dinosr_spec.md section 3):
# max_update, lr, mask_channel_prob, layerdrop, freeze_finetune_updates
PAPER = {"10m": (13000, 5e-5, 0.25, 0.1, 10000), "1h": (13000, 5e-5, 0.25, 0.1, 10000),
         "10h": (20000, 5e-5, 0.5, 0.05, 10000), "100h": (80000, 3e-5, 0.5, 0.1, 0)}
SAMPLES_PER_UPDATE = 3_200_000 * 2 * 4  # max_tokens x distributed_world_size x update_freq


def load(name: str) -> dict:
    return yaml.safe_load((CONF / f"finetune_ctc_{name}.yaml").read_text())


@pytest.mark.parametrize("split", SPLITS)
def test_split_config_has_the_paper_values(split):
    config = load(split)
    max_update, lr, channel_prob, layerdrop, freeze = PAPER[split]
    encoder = config["encoder_conf"]
    assert (encoder["freeze_finetune_updates"], encoder["mask_channel_prob"], encoder["encoder_layerdrop"]) == \
        (freeze, channel_prob, layerdrop)
    assert (encoder["mask_prob"], encoder["mask_length"], encoder["mask_channel_length"]) == (0.65, 10, 64)
    assert (encoder["dropout"], encoder["attention_dropout"], encoder["activation_dropout"]) == (0.0, 0.0, 0.1)
    assert encoder["freeze_feature_extractor"] is True
    assert config["optim"] == "adam"
    assert config["optim_conf"] == {"lr": lr, "betas": [0.9, 0.98], "eps": 1e-8, "weight_decay": 0.0}
    schedule = config["scheduler_conf"]
    assert config["scheduler"] == "tristagelr"
    assert (schedule["warmup_ratio"], schedule["hold_ratio"], schedule["decay_ratio"]) == (0.1, 0.4, 0.5)
    assert (schedule["init_lr_scale"], schedule["final_lr_scale"]) == (0.01, 0.05)
    updates = config["max_epoch"] * config["num_iters_per_epoch"] // config["accum_grad"]
    assert schedule["max_steps"] == updates == max_update
    assert config["batch_type"] == "numel" and config["batch_bins"] * config["accum_grad"] == SAMPLES_PER_UPDATE
    assert config["best_model_criterion"] == [["valid", "cer_ctc", "min"]] and config["keep_nbest_models"] == 1
    assert (config["decoder"], config["model_conf"]["ctc_weight"]) == ("none", 1.0)


@pytest.mark.parametrize("name", [*SPLITS, "tiny"])
def test_encoder_conf_keys_are_encoder_arguments(name):
    accepted = set(inspect.signature(DinoSREncoder.__init__).parameters) - {"self", "architecture"}
    assert set(load(name)["encoder_conf"]) <= accepted


def test_tiny_config_builds_a_tiny_encoder():
    encoder = DinoSREncoder(**load("tiny")["encoder_conf"])
    assert sum(p.numel() for p in encoder.parameters()) < 500_000


_PARSE_ALL = textwrap.dedent(
    """
    import sys
    import dinosr_espnet
    from dinosr_espnet.registry import register_now
    register_now()
    from espnet2.tasks.asr import ASRTask
    parser = ASRTask.get_parser()
    for path in sys.argv[1:]:
        args = parser.parse_args(["--config", path])
        assert args.encoder == "dinosr" and args.frontend is None and args.input_size == 1, (path, args.frontend)
        assert args.normalize is None and args.token_type == "char" and not args.use_tensorboard, path
        print("parsed", path)
    """
)


def test_configs_parse_with_espnet_asr_parser():
    paths = [str(CONF / f"finetune_ctc_{name}.yaml") for name in [*SPLITS, "tiny"]]
    proc = subprocess.run([sys.executable, "-c", _PARSE_ALL, *paths], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("parsed ") == len(paths)
