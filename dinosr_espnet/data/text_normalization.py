"""LibriSpeech-style transcript normalisation and checks.

LibriSpeech transcripts are upper case, words of A-Z and the apostrophe, separated by single spaces.
"""
import re
import unicodedata
from typing import Optional

from dinosr_espnet.constants import TRANSCRIPT_ALPHABET as ALPHABET

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_WORD_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015/_]+")
_PUNCTUATION = re.compile(r"[\"\u201c\u201d.,;:!?()\[\]{}\u00ab\u00bb*]")


def normalize_sentence(sentence: str) -> Optional[str]:
    """Return ``sentence`` in LibriSpeech form, or None when it cannot be normalised faithfully.

    Sentences with digits are skipped (LibriSpeech spells numbers out; guessing the spelling would
    put words in the transcript the speaker did not say), as are sentences with letters outside A-Z
    after accent stripping.
    """
    if any(character.isdigit() for character in sentence):
        return None
    text = sentence.translate(_APOSTROPHES)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(character for character in text if not unicodedata.combining(character))
    text = _PUNCTUATION.sub(" ", text)
    text = _WORD_SEPARATORS.sub(" ", text).upper()
    words = []
    for word in text.split():
        word = word.strip("'")
        if not word:
            continue
        if not set(word) <= ALPHABET:
            return None
        words.append(word)
    return " ".join(words) if words else None


def transcript_problem(text: str) -> Optional[str]:
    """Why ``text`` is not a valid LibriSpeech transcript, or None when it is."""
    if not text.strip():
        return "empty transcript"
    bad = sorted(set(text) - ALPHABET)
    if bad:
        return f"characters outside A-Z, apostrophe and space: {''.join(bad)!r}"
    if text != " ".join(text.split()):
        return "leading, trailing or repeated spaces"
    return None
