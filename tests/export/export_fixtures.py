"""Model dirs and audio for the export / extraction tests (no test functions here)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import soundfile
import torch
import yaml

from conftest import REPO_ROOT
from dinosr_espnet.nets import DinoSRModel, DinoSRConfig

SAMPLE_RATE = 16000


def tiny_config() -> DinoSRConfig:
    """The architecture of conf/pretrain_dinosr_tiny.yaml (what the tiny recipe pre-trains)."""
    document = yaml.safe_load((REPO_ROOT / "conf" / "pretrain_dinosr_tiny.yaml").read_text())
    return DinoSRConfig.from_dict(document["model_conf"])


def trained_looking_model(config: DinoSRConfig, seed: int = 0) -> DinoSRModel:
    """A DinoSRModel whose teacher differs from its student (as after training) and whose codebooks are
    no longer their initial values (running counts != 1)."""
    torch.manual_seed(seed)
    model = DinoSRModel(config)
    with torch.no_grad():
        for _ in range(3):
            for parameter in model.student.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
            model.on_optimizer_step()
        model.codebooks.counts.mul_(torch.rand_like(model.codebooks.counts) * 3.0 + 0.5)
        model.codebooks.sums.mul_(torch.rand_like(model.codebooks.sums) + 0.5)
    return model.eval()


def write_pretraining_dir(directory: Path, model: torch.nn.Module, model_name: str = "dinosr") -> Path:
    """``model.pth`` (``ssl.*``) and ``config.yaml`` as a pre-training run leaves them."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({f"ssl.{key}": value for key, value in model.state_dict().items()}, directory / "model.pth")
    (directory / "config.yaml").write_text(yaml.safe_dump({"model": model_name, "model_conf": model.config.to_dict()}))
    return directory


def utterance_audio(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Tones with a changing pitch plus noise: enough structure that the units vary along the utterance."""
    time = np.arange(samples) / SAMPLE_RATE
    pitch = 150.0 + 100.0 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * time)
    audio = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) + 0.05 * rng.normal(size=samples)
    return audio.astype(np.float32)


def write_audio_dir(directory: Path, lengths: Sequence[int], seed: int = 0,
                    with_num_samples: bool = True) -> Dict[str, Path]:
    """16-bit wav files and a Kaldi ``wav.scp`` (plus ``utt2num_samples``); returns {utt: path}."""
    rng = np.random.default_rng(seed)
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    paths: Dict[str, Path] = {}
    for index, samples in enumerate(lengths):
        utterance = f"utt{index:03d}"
        paths[utterance] = directory / "wav" / f"{utterance}.wav"
        soundfile.write(paths[utterance], utterance_audio(rng, samples), SAMPLE_RATE, subtype="PCM_16")
    (directory / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in paths.items()))
    if with_num_samples:
        (directory / "utt2num_samples").write_text("".join(f"{u} {n}\n" for u, n in zip(paths, lengths)))
    return paths


def read_audio(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="float32")
    assert rate == SAMPLE_RATE
    return audio


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """``||ours - theirs|| / ||ours||``."""
    ours, theirs = torch.as_tensor(ours).double(), torch.as_tensor(theirs).double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float((ours - theirs).norm() / ours.norm())


def frames_of(samples: int) -> int:
    """(N - 400) // 320 + 1: the CNN's frame count, written out independently of the code."""
    return (samples - 400) // 320 + 1


def listing(directory: Path) -> List[str]:
    return sorted(path.name for path in Path(directory).iterdir())


def pretraining_assignments(model, waveforms):
    """(time mask [batch, frame], assignments [K, masked frames]) of one DinoSRModel.forward on a padded batch."""
    captured = {}
    original_assign, original_mask = model.codebooks.assign, model.sample_time_mask

    def spy_assign(targets):
        captured["units"] = original_assign(targets)
        return captured["units"]

    def spy_mask(*args):
        captured["mask"] = original_mask(*args)
        return captured["mask"]

    lengths = torch.tensor([len(waveform) for waveform in waveforms])
    batch = torch.zeros(len(waveforms), int(lengths.max()))
    for row, waveform in enumerate(waveforms):
        batch[row, :len(waveform)] = torch.from_numpy(waveform)
    model.codebooks.assign, model.sample_time_mask = spy_assign, spy_mask
    try:
        with torch.no_grad():
            model(batch, lengths)
    finally:
        del model.codebooks.assign, model.sample_time_mask
    return captured["mask"], captured["units"]
