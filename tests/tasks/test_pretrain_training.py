"""dinosr_train on the tiny config and generated audio learns: loss down, codebooks in use."""
import re

import torch
import yaml

from dinosr_espnet.nets.config import DinoSRConfig
from pretrain_fixtures import run_train, write_corpus

_EPOCH_RESULT = re.compile(r"(\d+)epoch results: \[train\] .*?\bloss=([\d.]+), target_ppl=([\d.]+)")


def test_tiny_dinosr_reduces_loss_and_keeps_codebooks_used(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", 40, seed=3)
    output_dir = tmp_path / "exp"
    proc = run_train(corpus, output_dir, "--batch_bins", "96000", "--num_iters_per_epoch", "10",
                     "--max_epoch", "3", "--scheduler_conf", "max_update=30", "--health_log_interval", "5")
    results = {int(epoch): (float(loss), float(ppl)) for epoch, loss, ppl in _EPOCH_RESULT.findall(proc.stderr)}
    assert sorted(results) == [1, 2, 3], proc.stderr[-3000:]
    first_loss, last_loss = results[1][0], results[3][0]
    assert last_loss < first_loss - 0.1, results
    codebook_size = 16
    assert all(ppl > 0.25 * codebook_size for _, ppl in results.values()), results  # far from 1
    # health lines with lr and throughput; no collapse warning on a healthy run
    assert re.search(r"health: update 10: .*audio_seconds_per_second=.*lr=.*target_ppl=", proc.stderr)
    assert "COLLAPSE" not in proc.stderr

    # the pair fine-tuning consumes: model.pth (ssl.* keys) + config.yaml with the full config
    state = torch.load(output_dir / "model.pth")
    assert any(key.startswith("ssl.student.") for key in state)
    assert all(key.startswith("ssl.") for key in state)
    config = yaml.safe_load((output_dir / "config.yaml").read_text())
    assert config["model"] == "dinosr"
    assert DinoSRConfig.from_dict(config["model_conf"]).codebook_size == codebook_size
