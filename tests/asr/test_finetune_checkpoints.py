"""Fine-tuning checkpoints survive a kill during the save, and a fine-tuned model decodes on its own.

One tiny fine-tuning run (noise data, dinosr_tiny pre-trained model) whose pre-trained model lives
under a path with `` #``, ``: `` and ``!!python/object/apply:`` in it:

1. SIGKILL while ``2epoch.pth`` is being written (ESPnet writes ``checkpoint.pth`` just before it):
   ``checkpoint.pth`` still holds epoch 1, every link points at an existing, loadable file;
2. ``--resume true`` finishes the run; links again point at existing files, no temporaries remain;
3. the pre-training directory is moved away and the fine-tuned ``config.yaml`` + best model decode.
"""
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import REPO_ROOT

from dinosr_espnet.checkpoint_io import load_checkpoint

from test_untrusted_checkpoints import TEXTS, TINY_CONFIG, write_noise_data_dir, write_pretraining_dir

# asr_train whose write of 2epoch.pth dies half way (the same kill a user or a scheduler does)
_KILLED_TRAINING = textwrap.dedent(
    """
    import os, signal, sys
    import torch.serialization

    real_save = torch.serialization.save

    def save_then_die_on_epoch_2(obj, f, *args, **kwargs):
        if "2epoch.pth" in str(getattr(f, "name", f)):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.serialization.save = save_then_die_on_epoch_2
    from dinosr_espnet.bin.asr_train import main

    main(sys.argv[1:])
    """
)


def _run(arguments, killed=False):
    command = [sys.executable, "-c", _KILLED_TRAINING] if killed else [sys.executable, "-m",
                                                                      "dinosr_espnet.bin.asr_train"]
    return subprocess.run(command + arguments, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def _links_resolve(directory):
    links = [path for path in directory.iterdir() if path.is_symlink()]
    for link in links:
        assert link.exists(), f"{link.name} -> {link.readlink()} is dangling"
        load_checkpoint(link)  # complete, loadable
    return {link.name: str(link.readlink()) for link in links}


@pytest.mark.slow
@pytest.mark.timeout(2400)  # three ESPnet runs; on a shared 2-core machine each can take minutes
def test_killed_save_resumes_and_the_model_decodes_without_the_pretraining_dir(tmp_path):
    marker = tmp_path / "code ran"
    odd_directory = tmp_path / "pre #train: a" / f'!!python/object/apply:os.system ["touch {marker}"]'
    pretrained = write_pretraining_dir(odd_directory)
    data = write_noise_data_dir(tmp_path / "data", TEXTS)
    from dinosr_espnet.asr.token_list import write_char_token_list

    tokens = write_char_token_list(tmp_path / "tokens.txt")
    exp = tmp_path / "exp"
    options = ["--config", str(TINY_CONFIG), "--output_dir", str(exp), "--token_list", str(tokens), "--ngpu", "0",
               "--max_epoch", "3", "--num_iters_per_epoch", "1", "--keep_nbest_models", "1",
               "--pretrained_model", str(pretrained), "--resume", "true"]
    for split in ("train", "valid"):
        options += [f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                    f"--{split}_data_path_and_name_and_type", f"{data}/text,text,text",
                    f"--{split}_shape_file", f"{data}/speech_shape", f"--{split}_shape_file", f"{data}/text_shape.char"]

    killed = _run(options, killed=True)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert f"student weights loaded from {pretrained}" in killed.stdout + killed.stderr  # the path, unchanged
    assert load_checkpoint(exp / "checkpoint.pth")["reporter"]["epoch"] == 1  # not the epoch without a model
    assert not (exp / "2epoch.pth").exists()
    assert _links_resolve(exp)["valid.cer_ctc.best.pth"] == "1epoch.pth"

    resumed = _run(options)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert "The training was resumed" in log and "2/3epoch started" in log
    assert load_checkpoint(exp / "checkpoint.pth")["reporter"]["epoch"] == 3
    links = _links_resolve(exp)
    assert {"latest.pth", "valid.cer_ctc.best.pth", "valid.cer_ctc.ave.pth"} <= set(links)
    assert not [path.name for path in exp.iterdir() if ".tmp-" in path.name]

    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert "pretrained_model" not in config["encoder_conf"] and "pretrained_model" not in config
    assert config["encoder_conf"]["pretrained_config"]["encoder_layers"] == 3
    assert config["pretrained_from"] == str(pretrained)
    assert not marker.exists()

    shutil.move(str(tmp_path / "pre #train: a"), str(tmp_path / "moved"))
    decoding = subprocess.run(
        [sys.executable, "-m", "dinosr_espnet.bin.asr_inference", "--asr_train_config", str(exp / "config.yaml"),
         "--asr_model_file", str(exp / "valid.cer_ctc.best.pth"), "--data_dir", str(data),
         "--output_dir", str(tmp_path / "greedy"), "--device", "cpu"],
        capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert decoding.returncode == 0, decoding.stderr[-3000:]
    hypotheses = (tmp_path / "greedy" / "1best_recog" / "text").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in hypotheses] == sorted(f"spk-{i:02d}" for i in range(len(TEXTS)))
