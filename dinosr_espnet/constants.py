"""Domain constants of the project, in one place: audio rate, frame geometry, phones, characters.

Only the standard library is imported here, so every layer (``nets/`` included, which never
imports ESPnet) may use these names.

Frame geometry: the official DinoSR / wav2vec 2.0 Base front end (``nets.config``
``BASE_CONV_FEATURE_LAYERS``: kernels 10, 3, 3, 3, 3, 2, 2 and strides 5, 2, 2, 2, 2, 2, 2) turns N
samples at 16 kHz into ``T = (N - 400) // 320 + 1`` frames: frame i covers samples
[320 i, 320 i + 400), i.e. a 20 ms hop and a 25 ms receptive field. ``frame_phones`` files and the
decoders' frame rate use this geometry (a config with another front end changes the model's frame
count, not the alignment files of the corpus).
"""
import string
from typing import Tuple

SAMPLE_RATE = 16000                 # Hz; every audio file of the project must be 16 kHz mono
FRAME_STRIDE_SAMPLES = 320          # hop of the Base CNN front end (product of its strides)
RECEPTIVE_FIELD_SAMPLES = 400       # samples one frame sees
FRAME_SECONDS = FRAME_STRIDE_SAMPLES / SAMPLE_RATE   # 0.02 s: 50 Hz encoder output

# The 39 ARPAbet phones of the CMU dictionary, lower case without stress, plus ``sil``, in a phonetic
# order (silence, vowels, diphthongs, glides and liquids, nasals, stops, affricates, fricatives) so
# that plots group similar sounds together.
SILENCE = "sil"
PHONES_IN_PHONETIC_ORDER: Tuple[str, ...] = (
    SILENCE,
    "iy", "ih", "eh", "ae", "ah", "aa", "ao", "uh", "uw", "er",
    "ey", "ay", "oy", "aw", "ow",
    "w", "y", "l", "r",
    "m", "n", "ng",
    "p", "b", "t", "d", "k", "g",
    "ch", "jh",
    "f", "v", "th", "dh", "s", "z", "sh", "zh", "hh",
)
PHONE_SET = frozenset(PHONES_IN_PHONETIC_ORDER)

# Characters of a LibriSpeech transcript besides the word-separating space: the apostrophe and A-Z
# (the paper's letter dictionary without its word boundary).
CHARACTERS: Tuple[str, ...] = ("'", *string.ascii_uppercase)
TRANSCRIPT_ALPHABET = frozenset(CHARACTERS) | {" "}


def num_frames(num_samples: int) -> int:
    """Frames the Base front end makes from ``num_samples`` samples: (N - 400) // 320 + 1 (0 if shorter)."""
    if num_samples < RECEPTIVE_FIELD_SAMPLES:
        return 0
    return (num_samples - RECEPTIVE_FIELD_SAMPLES) // FRAME_STRIDE_SAMPLES + 1
