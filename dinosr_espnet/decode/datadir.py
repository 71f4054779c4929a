"""Reading Kaldi-style data dirs (``wav.scp``, ``text``, ``utt2spk``, ``utt2num_samples``).

The order of ``wav.scp`` is *the* order of a data dir: every output of the decoders follows it.
Tables are parsed by ``dinosr_espnet.data.kaldi_data`` (DataDirError, a ValueError, with file:line).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from dinosr_espnet.data.kaldi_data import read_num_samples, read_table_map


@dataclass
class DataDir:
    """What the decoders need from one data dir, in ``wav.scp`` order."""

    path: Path
    utt_ids: List[str]
    wav: Dict[str, str]
    text: Optional[Dict[str, str]] = None  # None when the dir has no transcripts
    utt2spk: Dict[str, str] = field(default_factory=dict)
    num_samples: Dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def read_data_dir(path) -> DataDir:
    """Read a data dir; ``wav.scp`` is required, the other files are used when present."""
    path = Path(path)
    wav_scp = path / "wav.scp"
    if not wav_scp.is_file():
        raise FileNotFoundError(f"not a data dir (no wav.scp): {path}")
    wav = read_table_map(wav_scp)
    text = read_table_map(path / "text") if (path / "text").is_file() else None
    if text is not None:
        missing = [utt for utt in wav if utt not in text]
        if missing:
            raise ValueError(f"{path / 'text'}: no transcript for {len(missing)} utterances, e.g. {missing[0]!r}")
    utt2spk = read_table_map(path / "utt2spk") if (path / "utt2spk").is_file() else {}
    num_samples: Dict[str, int] = {}
    for name in ("utt2num_samples", "speech_shape"):
        if (path / name).is_file():
            num_samples = read_num_samples(path / name)
            break
    return DataDir(path=path, utt_ids=list(wav), wav=wav, text=text, utt2spk=utt2spk, num_samples=num_samples)
