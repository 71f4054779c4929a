"""Greedy (Viterbi, best path) CTC decoding: frame-wise argmax, merge repeats, drop blanks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from dinosr_espnet.decode.tokens import CtcTokens


@dataclass
class GreedyHypothesis:
    token_ids: List[int]  # after merging repeats and removing blanks
    text: str
    score: float  # sum over frames of the best log-probability (log-prob of the best path)


def greedy_decode(log_probs: np.ndarray, tokens: CtcTokens) -> GreedyHypothesis:
    """Best-path decoding of one utterance.

    Args:
        log_probs: ``[frame, vocab]`` CTC log-posteriors (padding frames already removed).
    """
    if log_probs.ndim != 2 or log_probs.shape[1] != len(tokens):
        raise ValueError(f"expected log-probs [frame, {len(tokens)}], got {tuple(log_probs.shape)}")
    if log_probs.shape[0] == 0:
        return GreedyHypothesis([], "", 0.0)
    best = log_probs.argmax(axis=1)
    score = float(log_probs[np.arange(len(best)), best].sum())
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]  # merge repeats first, then drop blanks
    keep &= best != tokens.blank_index
    token_ids = [int(token_id) for token_id in best[keep]]
    return GreedyHypothesis(token_ids, tokens.ids_to_text(token_ids), score)


def greedy_decode_all(emissions: List[np.ndarray], tokens: CtcTokens) -> List[GreedyHypothesis]:
    """Greedy decoding of a list of ``[frame, vocab]`` arrays, in order."""
    return [greedy_decode(log_probs, tokens) for log_probs in emissions]
