"""The pre-training configs parse with the task's parser and say what the official runs did."""
import pytest

from conftest import REPO_ROOT
from dinosr_espnet.nets.config import DinoSRConfig, dinosr_base, dinosr_tiny

CONFIGS = ["pretrain_dinosr_base.yaml", "pretrain_data2vec_base.yaml",
           "pretrain_dinosr_tiny.yaml", "pretrain_data2vec_tiny.yaml"]


@pytest.fixture(scope="module")
def parser():
    import dinosr_espnet  # noqa: F401
    from dinosr_espnet.tasks.dinosr import DinoSRTask

    return DinoSRTask.get_parser()


def _parse(parser, name):
    return parser.parse_args(["--config", str(REPO_ROOT / "conf" / name), "--output_dir", "unused"])


@pytest.mark.parametrize("name", CONFIGS)
def test_config_schedule_covers_exactly_max_update(parser, name):
    args = _parse(parser, name)
    DinoSRConfig.from_dict(args.model_conf)
    assert args.scheduler == "fairseq_tristage" and args.optim == "adamw"
    assert args.max_epoch * args.num_iters_per_epoch // args.accum_grad == args.scheduler_conf["max_update"]
    assert args.batch_type == "numel"


def test_dinosr_base_config_is_the_official_base(parser):
    args = _parse(parser, "pretrain_dinosr_base.yaml")
    assert DinoSRConfig.from_dict(args.model_conf) == dinosr_base()
    assert args.batch_bins == 16 * 3_800_000
    assert (args.max_sample_size, args.min_sample_size) == (320000, 32000)
    assert args.optim_conf == {"lr": 0.0005, "betas": [0.9, 0.98], "eps": 1e-06, "weight_decay": 0.01}
    assert args.scheduler_conf["phase_ratio"] == [0.03, 0.47, 0.50]
    assert args.use_amp and args.amp_dtype == "float16"


def test_data2vec_base_differs_only_where_data2vec_does(parser):
    dinosr = _parse(parser, "pretrain_dinosr_base.yaml")
    data2vec = _parse(parser, "pretrain_data2vec_base.yaml")
    assert data2vec.model == "data2vec" and data2vec.model_conf["mask_prob"] == 0.65
    assert data2vec.scheduler_conf["phase_ratio"] == [0.03, 0.9, 0.07]
    assert data2vec.batch_bins == dinosr.batch_bins


def test_tiny_config_is_dinosr_tiny(parser):
    args = _parse(parser, "pretrain_dinosr_tiny.yaml")
    assert DinoSRConfig.from_dict(args.model_conf) == dinosr_tiny()
