"""The character CTC vocabulary: ESPnet's char token list for the paper's letter dictionary.

The paper fine-tunes on fairseq's ``dict.ltr.txt``: 26 letters, the apostrophe and ``|`` as word
boundary. ESPnet's char tokenizer writes the word boundary as ``<space>``, reserves ``<blank>``
(CTC blank, index 0) and ``<unk>``, and appends ``<sos/eos>`` last (docs/INTERFACES.md section 2).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Union

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.constants import CHARACTERS

BLANK = "<blank>"
UNKNOWN = "<unk>"
SPACE = "<space>"
SOS_EOS = "<sos/eos>"


def char_token_list() -> List[str]:
    """``<blank> <unk> <space> ' A..Z <sos/eos>``: 31 tokens, blank first, ``<sos/eos>`` last."""
    return [BLANK, UNKNOWN, SPACE, *CHARACTERS, SOS_EOS]


def char_tokens(transcript: str) -> List[str]:
    """Split an uppercase transcript into ESPnet char tokens (a space becomes ``<space>``)."""
    return [SPACE if character == " " else character for character in transcript]


def write_char_token_list(path: Union[str, Path]) -> Path:
    """Write :func:`char_token_list` one token per line (ESPnet's ``tokens.txt``); returns the path.

    Parent directories are created. Writing is atomic (temporary file then rename), so a stage
    interrupted here never leaves a truncated token list behind.
    """
    return atomic_write_text(path, "\n".join(char_token_list()) + "\n")
