"""Text-to-speech voices from Debian, each returning 16 kHz audio and its exact phone segments.

Base voices (identity = the recorded person; two voices built from one person share it, so
holding out an identity holds out every voice made from that person):

| name         | engine   | identity | package                      | component |
|--------------|----------|----------|------------------------------|-----------|
| flite_awb    | flite    | awb      | flite                        | main      |
| flite_rms    | flite    | rms      | flite                        | main      |
| flite_slt    | flite    | slt      | flite                        | main      |
| flite_kal16  | flite    | kal      | flite                        | main      |
| fest_kal     | festival | kal      | festvox-kallpc16k            | main      |
| fest_ked     | festival | ked      | festvox-kdlpc16k             | main      |
| fest_slt_hts | festival | slt      | festvox-us-slt-hts           | main      |
| fest_rab     | festival | rab      | festvox-rablpc16k            | contrib   |
| mbrola_us1   | mbrola   | us1      | mbrola mbrola-us1 espeak-ng  | non-free  |
| mbrola_us2   | mbrola   | us2      | mbrola mbrola-us2 espeak-ng  | non-free  |

Phone segments: flite ``-psdur``, festival's Segment relation, and for mbrola the .pho file that
espeak-ng writes (``--pho``), whose durations are what mbrola renders. mbrola also warps a voice
natively: ``-t`` (duration), ``-f`` (F0) and ``-l`` (reads the 16 kHz diphones as if sampled at
another rate: a vocal-tract-length warp that keeps durations and F0).

RESERVED_VOICES are kept for evaluation outside this project and must never be used here.
"""
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile

from dinosr_espnet.data.phones import PHONE_SETS


@dataclass(frozen=True)
class BaseVoice:
    name: str
    engine: str          # "flite", "festival" or "mbrola"
    voice: str           # flite -voice argument, festival voice function suffix or mbrola database
    identity: str        # the recorded speaker
    package: str         # Debian package that provides it
    phone_set: str = "arpabet"   # the phones it prints (phones.PHONE_SETS): arpabet, mrpa or sampa_us


BASE_VOICES: Dict[str, BaseVoice] = {voice.name: voice for voice in (
    BaseVoice("flite_awb", "flite", "awb", "awb", "flite"),
    BaseVoice("flite_rms", "flite", "rms", "rms", "flite"),
    BaseVoice("flite_slt", "flite", "slt", "slt", "flite"),
    BaseVoice("flite_kal16", "flite", "kal16", "kal", "flite"),
    BaseVoice("fest_kal", "festival", "kal_diphone", "kal", "festvox-kallpc16k"),
    BaseVoice("fest_ked", "festival", "ked_diphone", "ked", "festvox-kdlpc16k"),
    BaseVoice("fest_slt_hts", "festival", "cmu_us_slt_arctic_hts", "slt", "festvox-us-slt-hts"),
    BaseVoice("fest_rab", "festival", "rab_diphone", "rab", "festvox-rablpc16k", "mrpa"),
    BaseVoice("mbrola_us1", "mbrola", "us1", "us1", "mbrola-us1", "sampa_us"),
    BaseVoice("mbrola_us2", "mbrola", "us2", "us2", "mbrola-us2", "sampa_us"),
)}

# Voices reserved for evaluation outside the project (DESIGN.md, voice policy): never in any set,
# config or test. Matched case-insensitively against voice names, databases and package names.
RESERVED_VOICES = ("us3", "en1", "en-gb", "en_gb", "piper")

_FESTIVAL_VOICE_DIRS = {"kal_diphone": "english/kal_diphone", "ked_diphone": "english/ked_diphone",
                        "rab_diphone": "english/rab_diphone", "cmu_us_slt_arctic_hts": "us/cmu_us_slt_arctic_hts"}
MBROLA_DIR = Path("/usr/share/mbrola")
_MBROLA_RATE_STEP = 250        # -l rates are rounded to this step so that resampling to 16 kHz stays cheap
_MBROLA_LEADING_PAUSE_MS = 150  # espeak-ng's .pho starts with speech; LibriSpeech utterances start with silence


def is_reserved(name: str) -> bool:
    """True if ``name`` (a voice, database or package name) names a reserved voice."""
    lowered = name.lower()
    return any(reserved in lowered for reserved in RESERVED_VOICES)


class MissingToolError(RuntimeError):
    """A TTS program or voice is missing; the message names the Debian package to install."""


def require_program(program: str, package: str) -> None:
    if shutil.which(program) is None:
        raise MissingToolError(f"'{program}' not found on PATH: install the Debian package "
                               f"'{package}' (apt-get install {package}; see utils/debian_packages.txt)")


def check_voice_installed(voice: BaseVoice) -> None:
    """Raise MissingToolError naming the Debian package when ``voice`` cannot run."""
    if is_reserved(voice.voice) or is_reserved(voice.name):
        raise ValueError(f"voice {voice.name} is reserved for evaluation and must not be used (DESIGN.md)")
    if voice.engine == "flite":
        require_program("flite", "flite")
    elif voice.engine == "mbrola":
        require_program("espeak-ng", "espeak-ng")
        require_program("mbrola", "mbrola")
        database = MBROLA_DIR / voice.voice / voice.voice
        if not database.is_file():
            raise MissingToolError(f"mbrola voice {voice.voice} not found at {database}: apt-get install "
                                   f"{voice.package} (Debian non-free; utils/install_debian_packages.sh enables it)")
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
        phones.append(PHONE_SETS[voice.phone_set](phone))
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
                    phones.append(PHONE_SETS[voice.phone_set](fields[2]))
        results.append((_read_wav(base + ".wav"), (phones, ends)))
    return results


def mbrola_rate(vocal_tract_ratio: float) -> int:
    """The ``mbrola -l`` rate for a vocal-tract warp: formants scale by ``vocal_tract_ratio``."""
    return int(round(16000 * vocal_tract_ratio / _MBROLA_RATE_STEP)) * _MBROLA_RATE_STEP


_SENTENCE_BREAK_MS = 1777       # an SSML break between sentences; espeak-ng writes it as one long pause
_TRAILING_PAUSE_MS = 300


def _espeak_pho(voice: BaseVoice, texts: Sequence[str], work_dir: str) -> List[List[str]]:
    """One espeak-ng run over ``texts`` joined by SSML breaks: the .pho lines between the breaks."""
    if any(re.search(r"[<>&]", text) for text in texts):
        raise ValueError(f"texts for espeak-ng must not contain < > &: {texts!r}")
    text_path = os.path.join(work_dir, "mb.ssml")
    with open(text_path, "w", encoding="utf-8") as handle:
        handle.write("<speak>" + f'<break time="{_SENTENCE_BREAK_MS}ms"/>'.join(t.lower() for t in texts) + "</speak>\n")
    process = subprocess.run(["espeak-ng", "-v", f"mb-{voice.voice}", "-q", "-m", "--pho", "-f", text_path],
                             capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise RuntimeError(f"espeak-ng -v mb-{voice.voice} failed: {process.stderr.strip()[:300]}")
    parts: List[List[str]] = [[]]
    for line in process.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2 or line.startswith(";"):
            continue
        if fields[0] == "_" and float(fields[1]) >= _SENTENCE_BREAK_MS - 200:
            parts.append([])
        else:
            parts[-1].append(line)
    for part in parts:
        while part and part[0].split()[0] == "_":
            part.pop(0)
        while part and part[-1].split()[0] == "_":
            part.pop()
    return parts


def _espeak_pho_batch(voice: BaseVoice, texts: Sequence[str], work_dir: str) -> List[List[str]]:
    """The .pho lines of each text, from one espeak-ng run (its start-up costs more than a sentence).

    The texts are joined with an SSML break, which espeak-ng writes as a pause of ~1.77 s: the output
    is split there, and each part's edge pauses are dropped (the caller adds fixed ones). Intonation
    depends a little on the neighbouring sentences, so a batch must always be the same texts in the
    same order (a whole chapter) for the audio to be reproducible. If the split does not give one
    part per text (punctuation next to a break can merge pauses), each text is run on its own.
    """
    parts = _espeak_pho(voice, texts, work_dir)
    if len(parts) != len(texts) or not all(parts):
        parts = [_espeak_pho(voice, [text], work_dir)[0] for text in texts]
    for text, part in zip(texts, parts):
        if not part:
            raise RuntimeError(f"espeak-ng -v mb-{voice.voice} wrote no phones for {text!r}")
    return parts


def synthesize_mbrola_batch(voice: BaseVoice, texts: Sequence[str], duration_stretch: float, pitch_ratio: float,
                            vocal_tract_ratio: float, work_dir: str) -> List[Tuple[np.ndarray, Segments]]:
    """Utterances with espeak-ng (text -> .pho, one process for all) and mbrola (.pho -> audio, one each).

    Phone ends are the cumulative .pho durations (plus the fixed edge pauses) times
    ``duration_stretch`` (mbrola ``-t``); ``-f`` and ``-l`` leave durations unchanged.
    Returns:
        one (audio [sample] float32 at 16 kHz, segments) per text.
    """
    database = str(MBROLA_DIR / voice.voice / voice.voice)
    pho_path, wav_path = os.path.join(work_dir, "mb.pho"), os.path.join(work_dir, "mb.wav")
    results = []
    for text, lines in zip(texts, _espeak_pho_batch(voice, texts, work_dir)):
        lines = [f"_ {_MBROLA_LEADING_PAUSE_MS}"] + lines + [f"_ {_TRAILING_PAUSE_MS}"]
        phones, ends, elapsed_ms = [], [], 0.0
        for line in lines:
            symbol, milliseconds = line.split()[:2]
            elapsed_ms += float(milliseconds)
            phones.append(PHONE_SETS[voice.phone_set](symbol))
            ends.append(elapsed_ms * duration_stretch / 1000)
        with open(pho_path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        if os.path.exists(wav_path):
            os.unlink(wav_path)
        # -e: a missing diphone becomes silence instead of a fatal error (the us voices lack a few).
        process = subprocess.run(["mbrola", "-e", "-t", f"{duration_stretch:.4f}", "-f", f"{pitch_ratio:.4f}",
                                  "-l", str(mbrola_rate(vocal_tract_ratio)), database, pho_path, wav_path],
                                 capture_output=True, text=True, check=False)
        if process.returncode != 0 or not os.path.exists(wav_path):
            raise RuntimeError(f"mbrola {voice.voice} failed on {text!r}: {process.stderr.strip()[:300]}")
        results.append((_read_wav(wav_path), (phones, ends)))
    return results


def synthesize_batch(voice: BaseVoice, texts: Sequence[str], duration_stretch: float = 1.0,
                     pitch_ratio: float = 1.0, vocal_tract_ratio: float = 1.0) -> List[Tuple[np.ndarray, Segments]]:
    """Synthesize ``texts`` with ``voice``; each result is (audio [sample] at 16 kHz, segments).

    ``pitch_ratio`` and ``vocal_tract_ratio`` are native to mbrola only: flite and festival take
    their pitch and formant warps from audio_effects.sox_warp afterwards.
    """
    check_voice_installed(voice)
    if voice.engine != "mbrola" and (abs(pitch_ratio - 1) > 1e-9 or abs(vocal_tract_ratio - 1) > 1e-9):
        raise ValueError(f"{voice.engine} has no native pitch or vocal-tract warp; use audio_effects.sox_warp")
    with tempfile.TemporaryDirectory(prefix="synth_") as work_dir:
        if voice.engine == "flite":
            return [synthesize_flite(voice, text, duration_stretch, work_dir) for text in texts]
        if voice.engine == "mbrola":
            return synthesize_mbrola_batch(voice, texts, duration_stretch, pitch_ratio, vocal_tract_ratio, work_dir)
        return synthesize_festival_batch(voice, texts, duration_stretch, work_dir)
