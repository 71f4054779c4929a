"""Utterances of a Kaldi-style data dir (``wav.scp`` + ``frame_phones``) for unit analysis.

Tables and ``frame_phones`` are read by ``data.kaldi_data``, audio by ``data.audio`` (16 kHz mono
FLAC/WAV, nothing resampled or averaged; ``wav.scp`` commands only with ``allow_pipes``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from dinosr_espnet.analysis.alignments import AlignmentError
from dinosr_espnet.data.audio import AudioError, read_wav_scp_value
from dinosr_espnet.data.kaldi_data import DataDirError, read_frame_phones, read_table_map


@dataclass
class Utterance:
    utterance: str
    audio: str  # wav.scp value: a path, a Kaldi archive offset, or (when allowed) a command ending in '|'
    phones: List[str]  # one per 20 ms frame


def load_waveform(audio: str, utterance: str = "", allow_pipes: bool = False) -> np.ndarray:
    """Samples ``[samples]`` (float32) at 16 kHz, mono, of one wav.scp value; DataDirError naming it otherwise."""
    try:
        return read_wav_scp_value(audio, allow_pipes)
    except AudioError as error:
        raise DataDirError(f"utterance '{utterance}': {error}") from None


def read_data_dir(data_dir: str | Path, max_utterances: Optional[int] = None,
                  alignment_file: str = "frame_phones") -> List[Utterance]:
    """Utterances with both audio and alignment, sorted by id, at most ``max_utterances``."""
    data_dir = Path(data_dir)
    wav_scp, alignment_path = data_dir / "wav.scp", data_dir / alignment_file
    for path in (wav_scp, alignment_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (unit analysis needs wav.scp and {alignment_file}; "
                                    "frame_phones comes from the synthetic corpus or textgrid_to_frame_phones)")
    audio = read_table_map(wav_scp, allow_empty=False)  # {utt: path or command}; DataDirError with file:line
    alignments = read_frame_phones(alignment_path)
    common = sorted(set(audio) & set(alignments))
    if not common:
        raise AlignmentError(f"{wav_scp} and {alignment_path} have no utterance in common")
    unaligned = len(audio) - len(common)
    if unaligned:
        print(f"warning: {unaligned} of {len(audio)} utterances in {wav_scp} have no alignment; skipped",
              file=sys.stderr)
    if max_utterances is not None:
        common = common[:max_utterances]
    return [Utterance(utterance, audio[utterance], alignments[utterance]) for utterance in common]
