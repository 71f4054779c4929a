"""Word lexicons spelled in CTC tokens, in the layout flashlight reads.

A lexicon line is ``WORD<TAB>W O R D <space>``: the word, then its spelling in tokens, ending
with the word-boundary token (flashlight's convention, with ``<space>`` in place of ``|``).
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.decode.tokens import CtcTokens

SENTENCE_MARKERS = {"<s>", "</s>", "<unk>", "<UNK>"}


@dataclass
class Lexicon:
    """Word -> list of spellings (each a list of tokens), plus what could not be spelled."""

    spellings: Dict[str, List[List[str]]]
    skipped: Dict[str, str] = field(default_factory=dict)  # word -> first character not in the token list


def spell_word(word: str, tokens: CtcTokens) -> Optional[List[str]]:
    """The word's characters followed by the word boundary; None if a character is not a token."""
    inventory = set(tokens.tokens)
    letters = list(word)
    if not letters or any(letter not in inventory for letter in letters):
        return None
    return letters + [tokens.boundary]


def build_lexicon(words: Iterable[str], tokens: CtcTokens) -> Lexicon:
    lexicon = Lexicon(spellings={})
    for word in words:
        if word in SENTENCE_MARKERS or word in lexicon.spellings:
            continue
        spelling = spell_word(word, tokens)
        if spelling is None:
            lexicon.skipped[word] = next((c for c in word if c not in set(tokens.tokens)), "")
        else:
            lexicon.spellings[word] = [spelling]
    return lexicon


def write_lexicon(path: Path, lexicon: Lexicon) -> None:
    lines = [f"{word}\t{' '.join(spelling)}\n" for word, spellings in lexicon.spellings.items()
             for spelling in spellings]
    atomic_write_text(path, "".join(lines))


def read_lexicon(path: Path, tokens: Optional[CtcTokens] = None) -> Dict[str, List[List[str]]]:
    """Read ``WORD spelling...`` lines; with ``tokens``, every spelling token must be in the list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon not found: {path} (stage 5, bin/build_lm.py, writes it)")
    inventory = set(tokens.tokens) if tokens is not None else None
    spellings: Dict[str, List[List[str]]] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}:{line_number}: word {fields[0]!r} has no spelling")
        word, spelling = fields[0], fields[1:]
        if inventory is not None:
            unknown = [token for token in spelling if token not in inventory]
            if unknown:
                raise ValueError(f"{path}:{line_number}: tokens {unknown} of {word!r} are not in the token list")
        spellings.setdefault(word, []).append(spelling)
    if not spellings:
        raise ValueError(f"{path}: empty lexicon")
    return spellings


def arpa_vocabulary(path: Path) -> List[str]:
    """The unigrams of an ARPA file (plain or .gz), in file order."""
    opener = gzip.open if str(path).endswith(".gz") else open
    vocabulary: List[str] = []
    in_unigrams = False
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
                continue
            if in_unigrams:
                if line.startswith("\\"):
                    break
                fields = line.split()
                if len(fields) >= 2:
                    vocabulary.append(fields[1])
    if not vocabulary:
        raise ValueError(f"{path}: no \\1-grams: section found (not an ARPA file?)")
    return vocabulary
