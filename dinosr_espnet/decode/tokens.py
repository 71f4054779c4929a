"""The CTC token inventory (ESPnet char style) and the indices the decoders need.

The token list is the one stage 2 writes (docs/INTERFACES.md section 2): ``<blank>`` first,
``<unk>``, ``<space>`` (word boundary), ``'``, ``A``..``Z``, ``<sos/eos>`` last. Blank, word
boundary and unknown indices are looked up by name, never assumed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

BLANK = "<blank>"
UNKNOWN = "<unk>"
SOS_EOS = "<sos/eos>"
WORD_BOUNDARY_CHOICES = ("<space>", "|")


@dataclass(frozen=True)
class CtcTokens:
    """A CTC output inventory with its special indices resolved."""

    tokens: List[str]
    blank_index: int
    boundary_index: int  # the word boundary, also the "silence" of the lexicon decoder
    unknown_index: Optional[int]

    @property
    def boundary(self) -> str:
        return self.tokens[self.boundary_index]

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, token: str) -> int:
        return self.tokens.index(token)

    def ids_to_text(self, token_ids: Sequence[int]) -> str:
        """Join character tokens into words: boundary -> space, blank and ``<sos/eos>`` dropped."""
        pieces = []
        for token_id in token_ids:
            token = self.tokens[token_id]
            if token_id == self.blank_index or token == SOS_EOS:
                continue
            pieces.append(" " if token_id == self.boundary_index else token)
        return " ".join("".join(pieces).split())


def read_token_list(source: Union[str, Path, Sequence[str]]) -> List[str]:
    """A token list from ``tokens.txt`` (one token per line) or from a list already in memory."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"token list not found: {path}")
        tokens = [line.rstrip("\n").split(" ")[0] for line in path.read_text(encoding="utf-8").splitlines()]
        tokens = [token for token in tokens if token]
    else:
        tokens = [str(token) for token in source]
    if not tokens:
        raise ValueError(f"empty token list: {source if isinstance(source, (str, Path)) else '<list>'}")
    return tokens


def ctc_tokens(source: Union[str, Path, Sequence[str]], word_boundary: Optional[str] = None) -> CtcTokens:
    """Resolve blank, word-boundary and unknown indices from a token list.

    ``word_boundary`` None means: ``<space>`` if present, else ``|``.
    """
    tokens = read_token_list(source)
    if BLANK not in tokens:
        raise ValueError(f"token list has no {BLANK!r} (first tokens: {tokens[:5]})")
    candidates = [word_boundary] if word_boundary else list(WORD_BOUNDARY_CHOICES)
    boundary = next((token for token in candidates if token in tokens), None)
    if boundary is None:
        raise ValueError(f"token list has no word-boundary token {' or '.join(map(repr, candidates))}")
    if len(set(tokens)) != len(tokens):
        raise ValueError("token list has duplicate tokens")
    return CtcTokens(
        tokens=tokens,
        blank_index=tokens.index(BLANK),
        boundary_index=tokens.index(boundary),
        unknown_index=tokens.index(UNKNOWN) if UNKNOWN in tokens else None,
    )
