"""Small generated audio corpora and a runner for ``dinosr_train`` (helpers for tests/tasks)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import numpy as np
import soundfile

from conftest import REPO_ROOT, run_module

SAMPLE_RATE = 16000


def synthetic_utterance(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A 'phone'-like sequence: 80-250 ms segments of harmonic tones (one of a few pitch/timbre
    pairs), rising chirps and noise bursts, with a little background noise."""
    total = int(seconds * SAMPLE_RATE)
    timbres = [np.array([1.0, 0.5, 0.25]), np.array([0.3, 1.0, 0.1, 0.4]), np.array([1.0, 0.0, 0.6])]
    pieces: List[np.ndarray] = []
    while sum(len(p) for p in pieces) < total:
        length = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        kind = rng.integers(5)
        if kind < 3:
            f0 = rng.choice([110.0, 180.0, 260.0])
            piece = sum(a * np.sin(2 * np.pi * f0 * (h + 1) * t) for h, a in enumerate(timbres[kind]))
        elif kind == 3:
            f_start, f_end = rng.choice([300.0, 600.0]), rng.choice([900.0, 1500.0])
            piece = np.sin(2 * np.pi * (f_start * t + (f_end - f_start) * t ** 2 / (2 * t[-1])))
        else:
            piece = rng.normal(0.0, 0.5, length)
        pieces.append(piece * np.hanning(length))
    audio = np.concatenate(pieces)[:total] + rng.normal(0.0, 0.02, total)
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def write_corpus(directory: Path, num_utterances: int, seed: int = 0,
                 seconds: Sequence[float] = (2.0, 4.0)) -> Path:
    """Write ``wav/*.wav``, ``wav.scp`` and ``speech_shape`` (utt2num_samples) under ``directory``."""
    rng = np.random.default_rng(seed)
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    scp, shapes = [], []
    for index in range(num_utterances):
        utt_id = f"utt{index:04d}"
        audio = synthetic_utterance(rng, rng.uniform(*seconds))
        path = directory / "wav" / f"{utt_id}.wav"
        soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
        scp.append(f"{utt_id} {path}\n")
        shapes.append(f"{utt_id} {len(audio)}\n")
    (directory / "wav.scp").write_text("".join(scp))
    (directory / "speech_shape").write_text("".join(shapes))
    return directory


def train_args(data: Path, output_dir: Path, config: str = "conf/pretrain_dinosr_tiny.yaml",
               *extra: str) -> List[str]:
    return ["--config", str(REPO_ROOT / config), "--ngpu", "0", "--output_dir", str(output_dir),
            "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--train_shape_file", f"{data}/speech_shape",
            "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
            "--valid_shape_file", f"{data}/speech_shape", *extra]


def run_train(data: Path, output_dir: Path, *extra: str, config: str = "conf/pretrain_dinosr_tiny.yaml",
              check: bool = True, timeout: float = 300):
    return run_module("dinosr_espnet.bin.dinosr_train", *train_args(data, output_dir, config, *extra),
                      cwd=REPO_ROOT, check=check, timeout=timeout)
