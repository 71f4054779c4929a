"""The one audio policy of the project: how an audio file or ``wav.scp`` value is checked and read.

Used by data preparation (stage 1), stage 2 (``bin.format_data``), decoding, unit analysis and the
benchmark alike, so that a file accepted by one is accepted by all:

- The container is what the file *holds* (libsndfile's detection from the content), not what its
  name says: FLAC or WAV only, and a ``.flac`` / ``.wav`` name must match it (an MP3 renamed
  ``.flac`` is refused; lossy MP3 also changes the length by the encoder's padding).
- 16 kHz mono, always. Anything else is an :class:`AudioError` naming the file and the reason; the
  project never resamples, drops channels or averages them behind the user's back (resample or
  down-mix explicitly beforehand, e.g. ``sox in.flac -r 16000 -c 1 out.flac``).
- ``check_audio(path, full_decode=True)`` (data preparation) decodes every sample, so a truncated or
  corrupt file fails at preparation time, not hours into training.
- ``wav.scp`` values: a path (it may contain spaces or ``:``), a Kaldi archive offset
  (``foo.ark:123``) or a command ending in ``|``. Commands run a shell, so they are refused unless
  the caller passes ``allow_pipes=True`` (``--allow_wav_scp_pipes true`` on the command lines).
"""
from __future__ import annotations

import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from dinosr_espnet.constants import SAMPLE_RATE

# libsndfile container name -> file name endings that may hold it
CONTAINER_SUFFIXES = {"FLAC": (".flac",), "WAV": (".wav",), "WAVEX": (".wav",)}
_ARCHIVE_OFFSET = re.compile(r"\.ark:\d+$")
_BLOCK_FRAMES = 1 << 16


class AudioError(ValueError):
    """An audio file or ``wav.scp`` value the project does not read; the message names it and why."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an accepted audio file says."""

    path: str
    container: str       # libsndfile's name: FLAC, WAV, WAVEX
    num_samples: int


def is_pipe(value: str) -> bool:
    """A Kaldi ``wav.scp`` command (``sox in.flac -t wav - |``)."""
    return value.rstrip().endswith("|")


def pipe_refusal(value: str) -> str:
    """Why a command value is refused without the flag (no file name: the caller adds file:line)."""
    return (f"{value!r} is a command (ends in '|'); commands in wav.scp run a shell and are refused "
            f"unless --allow_wav_scp_pipes true (allow_pipes=True) is given")


def _format_check(container: str, sample_rate: int, channels: int, num_samples: int,
                  name: Optional[str]) -> Optional[str]:
    suffix = Path(name).suffix.lower() if name else ""
    known_suffixes = {ending for endings in CONTAINER_SUFFIXES.values() for ending in endings}
    if suffix in known_suffixes and suffix not in CONTAINER_SUFFIXES.get(container, ()):
        return f"named {suffix} but the content is {container} (files are opened by content, not by name)"
    if container not in CONTAINER_SUFFIXES:
        return f"container is {container}, expected FLAC or WAV"
    if sample_rate != SAMPLE_RATE:
        return (f"sample rate is {sample_rate} Hz, expected {SAMPLE_RATE} (the project never resamples; "
                f"convert it first, e.g. sox IN -r {SAMPLE_RATE} OUT)")
    if channels != 1:
        return (f"audio has {channels} channels, expected mono (no channel is dropped or averaged; "
                f"down-mix it first, e.g. sox IN -c 1 OUT)")
    if num_samples <= 0:
        return "audio is empty"
    return None


def check_audio(path: str, full_decode: bool = False) -> AudioInfo:
    """Check one audio file against the policy; AudioError naming ``path`` and the reason.

    ``full_decode`` decodes every sample and compares the count with the header (truncated FLAC).
    """
    import soundfile

    if not Path(path).is_file():
        raise AudioError(f"{path}: audio file does not exist")
    try:
        info = soundfile.info(path)
    except Exception as error:  # soundfile raises several types for files it cannot open
        raise AudioError(f"{path}: audio is unreadable ({_short(error)})") from None
    problem = _format_check(info.format, info.samplerate, info.channels, info.frames, path)
    if problem:
        raise AudioError(f"{path}: {problem}")
    if full_decode:
        decoded = 0
        try:
            with soundfile.SoundFile(path) as handle:
                for block in handle.blocks(blocksize=_BLOCK_FRAMES, dtype="int16"):
                    decoded += len(block)
        except Exception as error:
            raise AudioError(f"{path}: audio is truncated or corrupt: decoding fails after sample {decoded} "
                             f"of {info.frames} ({_short(error)})") from None
        if decoded != info.frames:
            raise AudioError(f"{path}: audio is truncated: the header lists {info.frames} samples, "
                             f"{decoded} decode")
    return AudioInfo(path, info.format, info.frames)


def audio_problem(path: str, full_decode: bool = True) -> Tuple[Optional[str], int]:
    """``(reason or None, number of samples)``: :func:`check_audio` for a worker pool (picklable result)."""
    try:
        return None, check_audio(path, full_decode).num_samples
    except AudioError as error:
        return str(error), 0


def read_audio(path: str) -> np.ndarray:
    """Samples ``[samples]`` (float32 in [-1, 1]) of a 16 kHz mono FLAC/WAV file; AudioError otherwise."""
    import soundfile

    info = check_audio(path)
    try:
        samples, _ = soundfile.read(path, dtype="float32", always_2d=False)
    except Exception as error:
        raise AudioError(f"{path}: audio is unreadable ({_short(error)})") from None
    if len(samples) != info.num_samples:
        raise AudioError(f"{path}: audio is truncated: the header lists {info.num_samples} samples, "
                         f"{len(samples)} decode")
    return samples


def read_wav_scp_value(value: str, allow_pipes: bool = False) -> np.ndarray:
    """Samples ``[samples]`` (float32) of one ``wav.scp`` value (path, ``x.ark:offset`` or command).

    The same policy as :func:`read_audio` holds for every kind; a command runs only with ``allow_pipes``.
    """
    value = value.strip()
    if is_pipe(value):
        if not allow_pipes:
            raise AudioError(pipe_refusal(value))
        import soundfile

        process = subprocess.run(value[:-1], shell=True, capture_output=True)  # allowed explicitly
        if process.returncode != 0:
            raise AudioError(f"{value!r}: command failed (exit {process.returncode}): "
                             f"{process.stderr.decode(errors='replace').strip()[-200:]}")
        try:
            with soundfile.SoundFile(io.BytesIO(process.stdout)) as handle:
                problem = _format_check(handle.format, handle.samplerate, handle.channels, handle.frames, None)
                samples = handle.read(dtype="float32", always_2d=False)
        except Exception as error:
            raise AudioError(f"{value!r}: output is not audio ({_short(error)})") from None
        if problem:
            raise AudioError(f"{value!r}: {problem}")
        return samples
    if _ARCHIVE_OFFSET.search(value):
        import kaldiio

        sample_rate, samples = kaldiio.load_mat(value)
        samples = np.asarray(samples)
        channels = 1 if samples.ndim == 1 else samples.shape[1]
        problem = _format_check("WAV", int(sample_rate), channels, len(samples), None)
        if problem:
            raise AudioError(f"{value}: {problem}")
        return (samples / 32768.0 if samples.dtype.kind == "i" else samples).astype(np.float32)
    return read_audio(value)


def _short(error: Exception) -> str:
    """The library's reason, without the file name it repeats (the message names the file already)."""
    reason = re.sub(r"^Error opening .*?: ", "", str(error).strip())
    return f"{type(error).__name__}: {reason[:160]}"
