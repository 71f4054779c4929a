"""Speaker warps applied after synthesis: sox speed (tempo + pitch + formants), sox pitch
(pitch only, duration kept), additive noise and gain. Output is 16 kHz mono float32."""
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


def add_noise(audio: np.ndarray, snr_db: float, generator: np.random.Generator) -> np.ndarray:
    """White plus low-passed (brown-ish) noise at ``snr_db`` relative to the speech power."""
    power = float(np.mean(audio ** 2)) + 1e-10
    white = generator.standard_normal(len(audio)).astype(np.float32)
    brown = np.cumsum(generator.standard_normal(len(audio))).astype(np.float32)
    brown -= np.convolve(brown, np.ones(801, dtype=np.float32) / 801, mode="same")   # remove drift
    noise = white / (np.std(white) + 1e-8) + brown / (np.std(brown) + 1e-8)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(noise ** 2) + 1e-10))
    return audio + noise.astype(np.float32)


def set_peak(audio: np.ndarray, peak: float) -> np.ndarray:
    return audio * (peak / (float(np.max(np.abs(audio))) + 1e-8))
