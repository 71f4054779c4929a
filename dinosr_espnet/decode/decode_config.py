"""The decode config YAML (conf/decode.yaml): beams, shared beam settings and the LM-weight search."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Tuple

import yaml

from dinosr_espnet.decode.lexicon_decoder import BeamSettings


@dataclass(frozen=True)
class SearchConfig:
    method: str = "random"  # random | grid
    budget: int = 128  # number of (lm_weight, word_score) trials, fairseq's Ax sweep size
    seed: int = 0
    lm_weight: Tuple[float, float] = (0.0, 5.0)  # search range, fairseq's sweep ranges (spec 4)
    word_score: Tuple[float, float] = (-5.0, 5.0)
    default: Optional[Tuple[float, float]] = (2.0, -1.0)  # tried first; the setting used when budget is 0


@dataclass(frozen=True)
class DecodeConfig:
    emission_batch_size: int = 8
    num_workers: int = 1  # processes for lexicon decoding (utterances split among them)
    word_boundary: str = "<space>"
    tune_beam: int = 500
    final_beam: int = 1500
    beam: BeamSettings = field(default_factory=BeamSettings)  # shared settings; beam size set per phase
    search: SearchConfig = field(default_factory=SearchConfig)


def _check_keys(values: dict, allowed, where: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(allowed)}")


def load_decode_config(path: Optional[Path]) -> DecodeConfig:
    """Read and validate a decode config; None gives the defaults."""
    if path is None:
        return DecodeConfig()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"decode config not found: {path}")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    _check_keys(values, [f.name for f in fields(DecodeConfig)], str(path))
    beam = BeamSettings.from_dict(values.pop("beam", {}) or {}, where=f"{path}: beam")
    search_values = dict(values.pop("search", {}) or {})
    _check_keys(search_values, [f.name for f in fields(SearchConfig)], f"{path}: search")
    for key in ("lm_weight", "word_score", "default"):
        if search_values.get(key) is not None:
            pair = tuple(float(v) for v in search_values[key])
            if len(pair) != 2:
                raise ValueError(f"{path}: search.{key} must be a pair, got {search_values[key]!r}")
            search_values[key] = pair
    search = SearchConfig(**search_values)
    if search.method not in ("random", "grid"):
        raise ValueError(f"{path}: search.method must be 'random' or 'grid', got {search.method!r}")
    return DecodeConfig(beam=beam, search=search, **values)
