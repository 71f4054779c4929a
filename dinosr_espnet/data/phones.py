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


def to_arpabet39(phone: str) -> str:
    """Map a synthesizer phone to ARPAbet-39 lower case or ``sil``; ValueError if unknown."""
    phone = phone.lower().rstrip("012")
    phone = _FOLD.get(phone, phone)
    if phone not in PHONE_SET:
        raise ValueError(f"unknown phone {phone!r} (expected ARPAbet-39 or pau)")
    return phone


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
