"""Frame-level phone alignments: conversion from MFA TextGrids to ``frame_phones`` (read and written by
``data.kaldi_data``), and matching them to the model's frames.

``frame_phones`` (docs/INTERFACES.md section 3): one line per utterance,
``<utt-id> <phone_1> ... <phone_T>``, one phone per 20 ms frame (the official CNN's), T = (N-400)//320 + 1
for N samples at 16 kHz. Frame i covers samples [320 i, 320 i + 400) and is labelled with the phone at its
centre, sample 320 i + 200. Phones are ARPAbet-39 in lower case without stress, plus ``sil``. A model
with frames k x 320 samples apart is labelled with every k-th phone (``phones_at_model_stride``).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.constants import (  # noqa: F401  (num_frames, PHONES_IN_PHONETIC_ORDER: re-exported)
    FRAME_STRIDE_SAMPLES, PHONES_IN_PHONETIC_ORDER, RECEPTIVE_FIELD_SAMPLES, SAMPLE_RATE, SILENCE, num_frames)

PHONE_TO_INDEX: Dict[str, int] = {phone: index for index, phone in enumerate(PHONES_IN_PHONETIC_ORDER)}
# Aligner labels that mean "no phone": MFA writes sil/sp/spn or an empty label; flite/festival write pau.
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "pau", "<eps>"})


class AlignmentError(ValueError):
    """Malformed alignment input or an alignment that does not fit the audio/model."""


def normalize_phone(label: str) -> str:
    """Map an aligner label to the inventory: lower case, stress digits stripped, silences -> ``sil``."""
    phone = re.sub(r"[0-9]+$", "", label.strip().lower())
    return SILENCE if phone in SILENCE_LABELS else phone


def phones_to_indices(phones: Sequence[str]) -> List[int]:
    """Phone strings -> indices into PHONES_IN_PHONETIC_ORDER."""
    return [PHONE_TO_INDEX[phone] for phone in phones]


def match_frame_count(utterance: str, phones: Sequence[str], model_frames: int) -> int:
    """Number of frames to use when ``phones`` (alignment) meets ``model_frames`` frames from the model.

    A difference of one frame (rounding at the end of the file) is tolerated and the longer side is
    trimmed to the shorter; anything more means the alignment belongs to other audio: AlignmentError.
    """
    difference = len(phones) - model_frames
    if abs(difference) > 1:
        raise AlignmentError(
            f"utterance '{utterance}': alignment has {len(phones)} frames but the model gives {model_frames} "
            f"(difference {difference:+d}; expected T = (N-400)//320 + 1)")
    return min(len(phones), model_frames)


def phones_at_model_stride(utterance: str, phones: Sequence[str], stride_samples: int,
                           window_samples: int = RECEPTIVE_FIELD_SAMPLES) -> List[str]:
    """An alignment of 20 ms frames resampled to a model whose frames are ``stride_samples`` apart.

    A model with window 400 and stride ``k x 320`` (the log-mel front end at 25 Hz: k = 2) centres frame j
    on sample ``k 320 j + 200``, the centre of alignment frame ``k j``: its labels are every k-th label,
    ``ceil(T / k)`` of them, which is also its frame count. Other geometries: AlignmentError.
    """
    if window_samples != RECEPTIVE_FIELD_SAMPLES or stride_samples % FRAME_STRIDE_SAMPLES or stride_samples <= 0:
        raise AlignmentError(
            f"utterance '{utterance}': frame_phones has one label per {FRAME_STRIDE_SAMPLES} samples; a model with "
            f"frames {stride_samples} samples apart and a {window_samples}-sample window does not fall on that grid")
    return list(phones[::stride_samples // FRAME_STRIDE_SAMPLES])


def segments_to_frame_phones(segments: Sequence[Tuple[float, float, str]], num_samples: int,
                             sample_rate: int = SAMPLE_RATE) -> List[str]:
    """Label every model frame with the phone of the segment containing the frame centre.

    Args:
        segments: ``(start_s, end_s, phone)`` sorted by time; phones already normalised.
        num_samples: audio length, which sets the number of frames.
    Returns:
        one phone per frame (``sil`` where no segment covers the centre: gaps, or past the last segment).
    """
    starts = [start for start, _, _ in segments]
    labels: List[str] = []
    for frame in range(num_frames(num_samples)):
        centre = (FRAME_STRIDE_SAMPLES * frame + RECEPTIVE_FIELD_SAMPLES / 2) / sample_rate
        position = bisect.bisect_right(starts, centre) - 1
        if position >= 0 and centre < segments[position][1]:
            labels.append(segments[position][2])
        else:
            labels.append(SILENCE)
    return labels


# --------------------------------------------------------------------------------------------------
# Praat TextGrid (long and short text formats, as written by the Montreal Forced Aligner)
# --------------------------------------------------------------------------------------------------
@dataclass
class Tier:
    name: str
    tier_class: str  # "IntervalTier" or "TextTier"
    items: List[Tuple]  # IntervalTier: (start, end, text); TextTier: (time, text)


_TOKEN = re.compile(
    r'(?P<string>"(?:[^"]|"")*")'
    r"|(?P<flag><exists>|<absent>)"
    r"|(?P<question>[A-Za-z_]+\?)"
    r"|(?P<label>[A-Za-z_][A-Za-z_ ]*?\s*(?:\[\s*\d*\s*\])?\s*:)"
    r"|(?P<key>[A-Za-z_][A-Za-z_ ]*?\s*=)"
    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<space>\s+)"
    r"|(?P<comment>!.*)"
)


def _tokenize(text: str, path: Path) -> List[Tuple[object, int]]:
    """Values of a TextGrid in order (strings, floats, flags) with their line numbers; labels are dropped."""
    tokens: List[Tuple[object, int]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        position = 0
        while position < len(line):
            match = _TOKEN.match(line, position)
            if match is None:
                raise AlignmentError(f"{path}:{line_number}: cannot parse TextGrid text near '{line[position:][:30]}'")
            kind = match.lastgroup
            if kind == "string":
                tokens.append((match.group()[1:-1].replace('""', '"'), line_number))
            elif kind == "number":
                tokens.append((float(match.group()), line_number))
            elif kind == "flag":
                tokens.append((match.group(), line_number))
            position = match.end()
    return tokens


class _TokenReader:
    def __init__(self, tokens: List[Tuple[object, int]], path: Path):
        self.tokens, self.path, self.index = tokens, path, 0

    def _next(self, expected: str) -> Tuple[object, int]:
        if self.index >= len(self.tokens):
            last_line = self.tokens[-1][1] if self.tokens else 1
            raise AlignmentError(f"{self.path}:{last_line}: TextGrid ends early, expected {expected}")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def number(self, what: str) -> float:
        value, line = self._next(f"a number ({what})")
        if not isinstance(value, float):
            raise AlignmentError(f"{self.path}:{line}: expected a number ({what}), found '{value}'")
        return value

    def string(self, what: str) -> str:
        value, line = self._next(f"a quoted string ({what})")
        if not isinstance(value, str) or value in ("<exists>", "<absent>"):
            raise AlignmentError(f"{self.path}:{line}: expected a quoted string ({what}), found '{value}'")
        return value

    def line(self) -> int:
        return self.tokens[min(self.index, len(self.tokens) - 1)][1]


def read_textgrid(path: str | Path) -> List[Tier]:
    """Parse a Praat TextGrid in long or short text format (UTF-8 or UTF-16 with BOM)."""
    path = Path(path)
    raw = path.read_bytes()
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    reader = _TokenReader(_tokenize(raw.decode(encoding), path), path)
    if reader.string("file type") != "ooTextFile" or reader.string("object class") != "TextGrid":
        raise AlignmentError(f"{path}:1: not a Praat text TextGrid (expected 'ooTextFile' / 'TextGrid' header)")
    reader.number("xmin")
    reader.number("xmax")
    flag, line = reader._next("<exists>")
    if flag != "<exists>":
        return []
    tiers: List[Tier] = []
    for _ in range(int(reader.number("number of tiers"))):
        tier_class = reader.string("tier class")
        name = reader.string("tier name")
        reader.number("tier xmin")
        reader.number("tier xmax")
        size = int(reader.number("number of intervals/points"))
        items: List[Tuple] = []
        for _ in range(size):
            if tier_class == "IntervalTier":
                start, end = reader.number("interval xmin"), reader.number("interval xmax")
                text = reader.string("interval text")
                if end < start:
                    raise AlignmentError(f"{path}:{reader.line()}: interval ends ({end}) before it starts ({start})")
                items.append((start, end, text))
            elif tier_class == "TextTier":
                items.append((reader.number("point time"), reader.string("point mark")))
            else:
                raise AlignmentError(f"{path}:{reader.line()}: unknown tier class '{tier_class}'")
        tiers.append(Tier(name=name, tier_class=tier_class, items=items))
    return tiers


def find_phone_tier(tiers: Sequence[Tier], path: Path, tier_name: str = "phones") -> Tier:
    """The interval tier called ``tier_name`` (MFA multi-speaker files call it ``<speaker> - phones``)."""
    wanted = tier_name.lower()
    for tier in tiers:
        name = tier.name.lower().strip()
        if tier.tier_class == "IntervalTier" and (name == wanted or name.endswith(f"- {wanted}")):
            return tier
    names = ", ".join(f"'{tier.name}'" for tier in tiers) or "none"
    raise AlignmentError(f"{path}: no interval tier named '{tier_name}' (tiers: {names})")


def textgrid_to_frame_phones(path: str | Path, num_samples: Optional[int] = None, tier_name: str = "phones",
                             sample_rate: int = SAMPLE_RATE) -> List[str]:
    """Frame labels of one MFA TextGrid; ``num_samples`` defaults to the TextGrid's end time x sample rate."""
    path = Path(path)
    tier = find_phone_tier(read_textgrid(path), path, tier_name)
    segments = []
    for start, end, text in tier.items:
        phone = normalize_phone(text)
        if phone not in PHONE_TO_INDEX:
            raise AlignmentError(f"{path}: phone '{text}' at {start:.3f}-{end:.3f} s is not ARPAbet-39 "
                                 f"(after lower-casing and stripping stress digits: '{phone}')")
        segments.append((start, end, phone))
    segments.sort(key=lambda segment: segment[0])
    if num_samples is None:
        end_time = max((end for _, end, _ in segments), default=0.0)
        num_samples = int(round(end_time * sample_rate))
    return segments_to_frame_phones(segments, num_samples, sample_rate)


def convert_textgrid_directory(textgrid_paths: Iterable[Path], num_samples: Optional[Dict[str, int]] = None,
                               tier_name: str = "phones", sample_rate: int = SAMPLE_RATE) -> Dict[str, List[str]]:
    """``{utt_id: frame phones}`` for TextGrid files named ``<utt_id>.TextGrid``."""
    alignments: Dict[str, List[str]] = {}
    for path in textgrid_paths:
        utterance = path.stem
        if num_samples is not None and utterance not in num_samples:
            continue
        length = num_samples[utterance] if num_samples is not None else None
        alignments[utterance] = textgrid_to_frame_phones(path, length, tier_name, sample_rate)
    return alignments
