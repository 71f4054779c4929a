"""Phone labels for 20 ms frames: ARPAbet-39 in lower case plus ``sil``.

The DinoSR / wav2vec 2.0 convolutional front end turns N samples at 16 kHz into
``T = (N - 400) // 320 + 1`` frames; frame i covers samples [320 i, 320 i + 400), and is labelled
with the phone whose [start, end) interval contains the frame centre, (320 i + 200) / 16000 s.
"""
import bisect
from typing import List, Sequence

from dinosr_espnet.constants import (FRAME_STRIDE_SAMPLES, PHONE_SET, RECEPTIVE_FIELD_SAMPLES, SAMPLE_RATE,
                                     num_frames)

# flite and festival (radio phone set) print ARPAbet without stress plus these extras.
_FOLD = {"pau": "sil", "h#": "sil", "sil": "sil", "ax": "ah", "axr": "er", "ix": "ih", "ux": "uw",
         "el": "l", "em": "m", "en": "n", "nx": "n", "dx": "t", "hv": "hh"}

# espeak-ng's SAMPA for the mbrola us1/us2 voices -> ARPAbet-39: every symbol its --pho output used for
# the 20 k sentences of every third line of the demo sentence pool.
# Aspirated stops fold into the plain stop, the flap 4 into t (as flite's dx), the pause _ into sil.
MBROLA_US_SAMPA = {
    "_": "sil", "p": "p", "p_h": "p", "b": "b", "t": "t", "t_h": "t", "d": "d", "k": "k", "k_h": "k",
    "g": "g", "4": "t", "f": "f", "v": "v", "T": "th", "D": "dh", "s": "s", "z": "z", "S": "sh", "Z": "zh",
    "h": "hh", "tS": "ch", "dZ": "jh", "m": "m", "n": "n", "N": "ng", "l": "l", "r": "r", "w": "w", "j": "y",
    "i": "iy", "I": "ih", "E": "eh", "{": "ae", "A": "aa", "O": "ao", "U": "uh", "u": "uw", "V": "ah",
    "@": "ah", "r=": "er", "EI": "ey", "AI": "ay", "OI": "oy", "aU": "aw", "@U": "ow",
    "l/": "l", "O~": "ao", "A~": "aa",   # rare: a dark l, nasal vowels of French loanwords
}

# festival's British MRPA phone set (rab_diphone) -> ARPAbet-39; diphthongs into r-colouring
# (e@ i@ u@) fold into their first vowel, as ARPAbet-39 has no separate phone for them.
MRPA = {
    "#": "sil", "p": "p", "t": "t", "k": "k", "b": "b", "d": "d", "g": "g", "s": "s", "z": "z", "sh": "sh",
    "zh": "zh", "f": "f", "v": "v", "th": "th", "dh": "dh", "ch": "ch", "jh": "jh", "h": "hh", "m": "m",
    "n": "n", "ng": "ng", "l": "l", "y": "y", "r": "r", "w": "w", "uh": "ah", "e": "eh", "a": "ae", "o": "aa",
    "i": "ih", "u": "uh", "ii": "iy", "uu": "uw", "oo": "ao", "aa": "aa", "@@": "er", "ai": "ay", "ei": "ey",
    "oi": "oy", "au": "aw", "ou": "ow", "e@": "eh", "i@": "ih", "u@": "uh", "@": "ah",
}


def to_arpabet39(phone: str) -> str:
    """Map a synthesizer phone to ARPAbet-39 lower case or ``sil``; ValueError if unknown."""
    phone = phone.lower().rstrip("012")
    phone = _FOLD.get(phone, phone)
    if phone not in PHONE_SET:
        raise ValueError(f"unknown phone {phone!r} (expected ARPAbet-39 or pau)")
    return phone


def sampa_to_arpabet39(phone: str) -> str:
    """Map a SAMPA phone of espeak-ng's mbrola us voices to ARPAbet-39 or ``sil``; ValueError if unknown."""
    if phone not in MBROLA_US_SAMPA:
        raise ValueError(f"unknown mbrola us phone {phone!r} (expected one of {sorted(MBROLA_US_SAMPA)})")
    return MBROLA_US_SAMPA[phone]


def mrpa_to_arpabet39(phone: str) -> str:
    """Map a phone of festival's MRPA set (rab_diphone) to ARPAbet-39 or ``sil``; ValueError if unknown."""
    if phone not in MRPA:
        raise ValueError(f"unknown MRPA phone {phone!r} (expected one of {sorted(MRPA)})")
    return MRPA[phone]


# The phone sets the synthesizers print, by name (tts.BaseVoice.phone_set).
PHONE_SETS = {"arpabet": to_arpabet39, "mrpa": mrpa_to_arpabet39, "sampa_us": sampa_to_arpabet39}


def frame_labels(phones: Sequence[str], end_times: Sequence[float], num_samples: int,
                 sample_rate: int = SAMPLE_RATE) -> List[str]:
    """Label each 20 ms frame with the phone at its centre.

    Args:
        phones: ARPAbet-39/sil phones, one per segment, in time order.
        end_times: end time in seconds of each segment (non-decreasing); the last segment is
            extended to the end of the audio (synthesizers may stop short or run past it).
        num_samples: audio length in samples.
    Returns:
        ``num_frames(num_samples)`` labels.
    """
    if len(phones) != len(end_times) or not phones:
        raise ValueError(f"need one end time per phone, got {len(phones)} phones and {len(end_times)} ends")
    labels = []
    last = len(phones) - 1
    for frame in range(num_frames(num_samples)):
        centre = (FRAME_STRIDE_SAMPLES * frame + RECEPTIVE_FIELD_SAMPLES / 2) / sample_rate
        labels.append(phones[min(bisect.bisect_right(end_times, centre), last)])
    return labels
