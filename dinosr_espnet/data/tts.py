"""Text-to-speech voices from Debian main, each returning 16 kHz audio and its phone segments.

Base voices (identity = the recorded person; two voices built from one person share it, so
holding out an identity holds out every voice made from that person):

| name         | engine   | identity | package             |
|--------------|----------|----------|---------------------|
| flite_awb    | flite    | awb      | flite               |
| flite_rms    | flite    | rms      | flite               |
| flite_slt    | flite    | slt      | flite               |
| flite_kal16  | flite    | kal      | flite               |
| fest_kal     | festival | kal      | festvox-kallpc16k   |
| fest_slt_hts | festival | slt      | festvox-us-slt-hts  |
"""
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile

from dinosr_espnet.data.phones import to_arpabet39


@dataclass(frozen=True)
class BaseVoice:
    name: str
    engine: str          # "flite" or "festival"
    voice: str           # flite -voice argument or festival voice function suffix
    identity: str        # the recorded speaker
    package: str         # Debian package that provides it


BASE_VOICES: Dict[str, BaseVoice] = {voice.name: voice for voice in (
    BaseVoice("flite_awb", "flite", "awb", "awb", "flite"),
    BaseVoice("flite_rms", "flite", "rms", "rms", "flite"),
    BaseVoice("flite_slt", "flite", "slt", "slt", "flite"),
    BaseVoice("flite_kal16", "flite", "kal16", "kal", "flite"),
    BaseVoice("fest_kal", "festival", "kal_diphone", "kal", "festvox-kallpc16k"),
    BaseVoice("fest_slt_hts", "festival", "cmu_us_slt_arctic_hts", "slt", "festvox-us-slt-hts"),
)}

_FESTIVAL_VOICE_DIRS = {"kal_diphone": "english/kal_diphone", "cmu_us_slt_arctic_hts": "us/cmu_us_slt_arctic_hts"}


class MissingToolError(RuntimeError):
    """A TTS program or voice is missing; the message names the Debian package to install."""


def require_program(program: str, package: str) -> None:
    if shutil.which(program) is None:
        raise MissingToolError(f"'{program}' not found on PATH: install the Debian package "
                               f"'{package}' (apt-get install {package}; see utils/debian_packages.txt)")


def check_voice_installed(voice: BaseVoice) -> None:
    """Raise MissingToolError naming the Debian package when ``voice`` cannot run."""
    if voice.engine == "flite":
        require_program("flite", "flite")
    else:
        require_program("festival", "festival")
        voice_dir = Path("/usr/share/festival/voices") / _FESTIVAL_VOICE_DIRS[voice.voice]
        if not voice_dir.is_dir():
            raise MissingToolError(f"festival voice {voice.voice} not found at {voice_dir}: "
                                   f"apt-get install {voice.package}")


Segments = Tuple[List[str], List[float]]   # ARPAbet-39 phones and their end times in seconds


def _resample_to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate == 16000:
        return audio
    from scipy.signal import resample_poly
    divisor = np.gcd(sample_rate, 16000)
    return resample_poly(audio, 16000 // divisor, sample_rate // divisor).astype(np.float32)


def _read_wav(path: str) -> np.ndarray:
    audio, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    return _resample_to_16k(audio.mean(axis=1), sample_rate)


def synthesize_flite(voice: BaseVoice, text: str, duration_stretch: float,
                     work_dir: str) -> Tuple[np.ndarray, Segments]:
    """One utterance with flite: (audio [sample] float32 at 16 kHz, phone segments)."""
    wav_path = os.path.join(work_dir, "flite.wav")
    process = subprocess.run(["flite", "-voice", voice.voice, "--setf", f"duration_stretch={duration_stretch:.4f}",
                              "-psdur", "-t", text.lower(), "-o", wav_path],
                             capture_output=True, text=True, check=False)
    if process.returncode != 0 or not os.path.exists(wav_path):
        raise RuntimeError(f"flite -voice {voice.voice} failed on {text!r}: {process.stderr.strip()[:300]}")
    phones, ends = [], []
    for item in process.stdout.split():
        phone, end = item.rsplit(":", 1)
        phones.append(to_arpabet39(phone))
        ends.append(float(end))
    return _read_wav(wav_path), (phones, ends)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize_festival_batch(voice: BaseVoice, texts: Sequence[str], duration_stretch: float,
                              work_dir: str) -> List[Tuple[np.ndarray, Segments]]:
    """Several utterances in one festival process (its start-up costs ~0.2 s)."""
    lines = [f"(voice_{voice.voice})", f"(Parameter.set 'Duration_Stretch {duration_stretch:.4f})"]
    for index, text in enumerate(texts):
        base = os.path.join(work_dir, f"fest{index}")
        lines.append(f"(set! u (utt.synth (Utterance Text {_scheme_string(text.lower())})))")
        lines.append(f'(utt.save.wave u "{base}.wav" \'riff)')
        lines.append(f'(utt.save.segs u "{base}.segs")')
    script = os.path.join(work_dir, "batch.scm")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    process = subprocess.run(["festival", "-b", script], capture_output=True, text=True, check=False)
    results = []
    for index, text in enumerate(texts):
        base = os.path.join(work_dir, f"fest{index}")
        if process.returncode != 0 or not os.path.exists(base + ".segs"):
            raise RuntimeError(f"festival voice {voice.voice} failed on {text!r}: "
                               f"{(process.stderr or process.stdout).strip()[:300]}")
        phones, ends = [], []
        with open(base + ".segs", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 3:
                    ends.append(float(fields[0]))
                    phones.append(to_arpabet39(fields[2]))
        results.append((_read_wav(base + ".wav"), (phones, ends)))
    return results


def synthesize_batch(voice: BaseVoice, texts: Sequence[str],
                     duration_stretch: float = 1.0) -> List[Tuple[np.ndarray, Segments]]:
    """Synthesize ``texts`` with ``voice``; each result is (audio [sample] at 16 kHz, segments)."""
    check_voice_installed(voice)
    with tempfile.TemporaryDirectory(prefix="synth_") as work_dir:
        if voice.engine == "flite":
            return [synthesize_flite(voice, text, duration_stretch, work_dir) for text in texts]
        return synthesize_festival_batch(voice, texts, duration_stretch, work_dir)
