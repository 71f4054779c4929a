"""Speaker warps applied after synthesis: sox speed (tempo + pitch + formants), sox pitch
(pitch only, duration kept), reverberation in a synthetic room, additive noise and gain.
Output is 16 kHz mono float32. Every random choice comes from the generator passed in, so a
seed gives the same audio."""
import os
import subprocess
import tempfile

import numpy as np
import soundfile

from dinosr_espnet.data.tts import require_program


def sox_warp(audio: np.ndarray, speed: float, pitch_cents: float) -> np.ndarray:
    """Apply ``speed`` (length becomes N / speed) then ``pitch_cents`` with sox, 16 kHz in and out.

    Args:
        audio: [sample] float32 at 16 kHz.
    Returns:
        [sample'] float32 at 16 kHz, sample' ~= sample / speed.
    """
    if abs(speed - 1.0) < 1e-6 and abs(pitch_cents) < 1e-6:
        return audio
    require_program("sox", "sox")
    effects = []
    if abs(speed - 1.0) >= 1e-6:
        effects += ["speed", f"{speed:.5f}"]
    if abs(pitch_cents) >= 1e-6:
        effects += ["pitch", f"{pitch_cents:.1f}"]
    with tempfile.TemporaryDirectory(prefix="warp_") as work_dir:
        source, target = os.path.join(work_dir, "in.wav"), os.path.join(work_dir, "out.wav")
        soundfile.write(source, audio, 16000, subtype="FLOAT")
        # -R: repeatable (no random dither seed); -D: no dither; output float keeps it exact.
        process = subprocess.run(["sox", "-R", "-D", source, "-e", "floating-point", "-b", "32", target,
                                  *effects, "rate", "16000"], capture_output=True, text=True, check=False)
        if process.returncode != 0:
            raise RuntimeError(f"sox {' '.join(effects)} failed: {process.stderr.strip()[:300]}")
        warped, _ = soundfile.read(target, dtype="float32")
    return warped


def room_impulse_response(reverb_seconds: float, generator: np.random.Generator,
                          sample_rate: int = 16000) -> np.ndarray:
    """A synthetic room: the direct path, then exponentially decaying noise (RT60 ``reverb_seconds``).

    The decay falls by 60 dB over ``reverb_seconds``; the reverberant tail starts after 3-10 ms
    (first reflections) and carries about as much energy as the direct path at RT60 0.5 s.
    Returns:
        [tap] float32, tap 0 = 1 (the direct path, so alignments keep their times).
    """
    length = int(min(1.2 * reverb_seconds, 1.0) * sample_rate)
    response = np.zeros(max(length, 1), dtype=np.float32)
    response[0] = 1.0
    start = int(generator.uniform(0.003, 0.010) * sample_rate)
    if length > start:
        time = np.arange(length - start) / sample_rate
        tail = generator.standard_normal(length - start) * np.exp(-6.908 * time / reverb_seconds)
        tail *= np.sqrt(reverb_seconds / 0.5 / (np.sum(tail ** 2) + 1e-10))
        response[start:] = tail.astype(np.float32)
    return response


def add_reverb(audio: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Convolve ``audio`` [sample] with ``response`` [tap]; the output keeps the input length
    (the tail past the end is cut: the synthesizers end on a pause)."""
    from scipy.signal import fftconvolve
    if len(response) <= 1:
        return audio
    return fftconvolve(audio, response)[:len(audio)].astype(np.float32)


def _moving_average(signal: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples (odd), edges averaged over what exists;
    a running sum, so O(N) where np.convolve is O(N * width)."""
    half = width // 2
    padded = np.concatenate(([0.0], np.cumsum(signal, dtype=np.float64)))
    index = np.arange(len(signal))
    low, high = np.maximum(index - half, 0), np.minimum(index + half + 1, len(signal))
    return ((padded[high] - padded[low]) / (high - low)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, generator: np.random.Generator) -> np.ndarray:
    """White plus low-passed (brown-ish) noise at ``snr_db`` relative to the speech power."""
    power = float(np.mean(audio ** 2)) + 1e-10
    white = generator.standard_normal(len(audio)).astype(np.float32)
    brown = np.cumsum(generator.standard_normal(len(audio))).astype(np.float32)
    brown -= _moving_average(brown, 801)   # remove drift
    noise = white / (np.std(white) + 1e-8) + brown / (np.std(brown) + 1e-8)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(noise ** 2) + 1e-10))
    return audio + noise.astype(np.float32)


def set_peak(audio: np.ndarray, peak: float) -> np.ndarray:
    return audio * (peak / (float(np.max(np.abs(audio))) + 1e-8))
