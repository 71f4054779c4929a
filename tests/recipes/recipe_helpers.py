"""Helpers for the recipe tests: a scratch recipe dir and a fake stage-1 corpus."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "egs" / "TEMPLATE" / "dinosr1" / "dinosr.sh"
UTILS = REPO_ROOT / "utils"


def run_bash(arguments: Sequence[str], cwd: Path, timeout: float = 120,
             env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(["bash", *arguments], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def write_data_dir(path: Path, utterances: Dict[str, float], with_text: bool = True,
                   sample_rate: int = 16000) -> None:
    """A Kaldi data dir whose wav.scp points at silent 16 kHz FLAC files of the given durations."""
    path.mkdir(parents=True, exist_ok=True)
    audio = path / "audio"
    audio.mkdir(exist_ok=True)
    ids = sorted(utterances)
    for utterance in ids:
        soundfile.write(str(audio / f"{utterance}.flac"), np.zeros(int(utterances[utterance] * sample_rate),
                                                                   dtype=np.int16), sample_rate)
    (path / "wav.scp").write_text("".join(f"{u} {audio / (u + '.flac')}\n" for u in ids))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    (path / "utt2num_samples").write_text(
        "".join(f"{u} {int(utterances[u] * sample_rate)}\n" for u in ids))
    if with_text:
        (path / "text").write_text("".join(f"{u} HELLO WORLD'S END\n" for u in ids))


FAKE_DATA_SH = """#!/usr/bin/env bash
# Fake stage 1 for recipe tests: counts its runs, then copies a prepared corpus into place.
set -e
datadir=data
while [ $# -gt 0 ]; do case "$1" in --datadir) datadir="$2"; shift 2;; --dry_run) dry_run="$2"; shift 2;; *) shift 2;; esac; done
[ "${dry_run:-false}" = true ] && { echo "fake data.sh: would prepare data/"; exit 0; }
echo run >> "$(dirname "$0")/../data_sh_runs.txt"
[ -n "${FAKE_DATA_FAIL:-}" ] && { echo "failing on purpose" >&2; exit 3; }
mkdir -p "$datadir"
cp -r prepared/. "$datadir"/
"""


def make_scratch_recipe(root: Path, sets: Sequence[str] = ("train_960", "train_10m", "dev_clean", "dev_other",
                                                             "test_clean")) -> Path:
    """A recipe dir with a fake local/data.sh, a path.sh pinning this test's python, and one corpus."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "local").mkdir(exist_ok=True)
    data_sh = root / "local" / "data.sh"
    data_sh.write_text(FAKE_DATA_SH)
    data_sh.chmod(0o755)
    (root / "path.sh").write_text(f"export PYTHON={sys.executable}\n")
    durations = {"spk1-0001-0001": 1.0, "spk1-0001-0002": 3.0, "spk2-0002-0001": 25.0, "spk2-0002-0002": 5.0}
    for name in sets:
        write_data_dir(root / "prepared" / name, durations, with_text=name != "train_960")
    (root / "prepared" / "local" / "lm").mkdir(parents=True, exist_ok=True)
    (root / "prepared" / "local" / "lm" / "lm_text.txt").write_text("HELLO WORLD\nTHE END\n")
    (root / "conf").mkdir(exist_ok=True)
    for name in ("pretrain_dinosr.yaml", "finetune_ctc_10m.yaml", "decode.yaml"):
        (root / "conf" / name).write_text("max_epoch: 1\n")
    return root


def template_args(*extra: str) -> list:
    """Template options that point the scratch recipe at its own sets and configs."""
    return [str(TEMPLATE), "--test_sets", "test_clean", "--finetune_splits", "10m",
            "--pretrain_config", "conf/pretrain_{tag}.yaml", *extra]
