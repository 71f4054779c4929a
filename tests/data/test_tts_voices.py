"""The corpus's TTS voices and warps: every base voice's phone segments cover its audio, mbrola's
vocal-tract warp moves formants and keeps timing, phone-set maps, and the synthetic room."""
import numpy as np
import pytest

from dinosr_espnet.data import tts
from dinosr_espnet.data.audio_effects import add_reverb, room_impulse_response
from dinosr_espnet.data.phones import PHONE_SET, mrpa_to_arpabet39, sampa_to_arpabet39

TEXT = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"


@pytest.mark.parametrize("name", sorted(tts.BASE_VOICES))
def test_every_voice_gives_phone_segments_that_cover_its_audio(name):
    voice = tts.BASE_VOICES[name]
    (audio, (phones, ends)), = tts.synthesize_batch(voice, [TEXT])
    seconds = len(audio) / 16000
    assert 1.0 < seconds < 6.0
    assert set(phones) <= PHONE_SET and phones[0] == "sil"
    assert sum(phone != "sil" for phone in phones) >= 25          # ~30 phones in the sentence
    assert all(a <= b for a, b in zip(ends, ends[1:]))
    # flite's kal16 ends its last pause ~0.1 s past the audio; the others match within 30 ms
    assert abs(ends[-1] - seconds) < (0.15 if name == "flite_kal16" else 0.03), (ends[-1], seconds)


def _spectral_centroid(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(len(audio), 1 / 16000)
    return float(np.sum(frequencies * spectrum) / np.sum(spectrum))


def test_mbrola_vocal_tract_warp_moves_formants_and_keeps_the_timing():
    voice = tts.BASE_VOICES["mbrola_us1"]
    (short, (phones_short, ends_short)), = tts.synthesize_batch(voice, [TEXT], vocal_tract_ratio=1.15)
    (long_, (phones_long, ends_long)), = tts.synthesize_batch(voice, [TEXT], vocal_tract_ratio=0.87)
    assert phones_short == phones_long and ends_short == ends_long
    assert abs(len(short) - len(long_)) < 0.015 * 16000
    assert abs(ends_short[-1] - len(short) / 16000) < 0.015
    assert _spectral_centroid(short) > 1.15 * _spectral_centroid(long_)   # shorter tract, higher formants


def test_mbrola_duration_stretch_scales_audio_and_segments():
    voice = tts.BASE_VOICES["mbrola_us2"]
    (plain, (_, ends_plain)), = tts.synthesize_batch(voice, [TEXT])
    (slow, (_, ends_slow)), = tts.synthesize_batch(voice, [TEXT], duration_stretch=1.3)
    assert len(slow) / len(plain) == pytest.approx(1.3, rel=0.02)
    assert np.allclose(ends_slow, 1.3 * np.asarray(ends_plain))


def test_mbrola_batch_gives_one_result_per_text_in_order():
    voice = tts.BASE_VOICES["mbrola_us1"]
    texts = ["HELLO THERE", "A MUCH LONGER SENTENCE WITH MANY MORE WORDS IN IT THAN THE FIRST", "YES"]
    results = tts.synthesize_batch(voice, texts)
    assert len(results) == 3
    lengths = [len(audio) for audio, _ in results]
    assert lengths[1] > 2 * lengths[0] > 0 and lengths[2] < lengths[0]


def test_phone_set_maps():
    assert [sampa_to_arpabet39(p) for p in ("_", "t_h", "4", "r=", "{", "@U", "dZ", "V")] == \
        ["sil", "t", "t", "er", "ae", "ow", "jh", "ah"]
    assert [mrpa_to_arpabet39(p) for p in ("#", "@@", "uh", "ii", "oo", "ou", "e@", "h")] == \
        ["sil", "er", "ah", "iy", "ao", "ow", "eh", "hh"]
    with pytest.raises(ValueError, match="unknown mbrola us phone 'Q'"):
        sampa_to_arpabet39("Q")
    with pytest.raises(ValueError, match="unknown MRPA phone 'aa1'"):
        mrpa_to_arpabet39("aa1")


def test_room_impulse_response_decays_by_60_db_over_rt60():
    rt60 = 0.5
    response = room_impulse_response(rt60, np.random.default_rng(0))
    assert response[0] == 1.0
    tail = response[1:].astype(np.float64)
    # Schroeder backward integration of the reverberant tail; -60 dB reached near rt60
    energy = np.cumsum(tail[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0] + 1e-30)
    t20 = np.argmax(decay_db < -20) / 16000            # extrapolate -20 dB to -60 dB (robust to the cut end)
    assert 3 * t20 == pytest.approx(rt60, rel=0.25)


def test_reverb_keeps_length_and_direct_path():
    rng = np.random.default_rng(1)
    audio = np.zeros(8000, dtype=np.float32)
    audio[100] = 1.0
    wet = add_reverb(audio, room_impulse_response(0.3, rng))
    assert len(wet) == len(audio) and wet[100] == pytest.approx(1.0, abs=1e-5)
    assert np.abs(wet[:100]).max() < 1e-6 and np.abs(wet[300:]).sum() > 0.1   # causal (FFT rounding only)
