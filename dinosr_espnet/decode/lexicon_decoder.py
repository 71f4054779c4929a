"""Word-level lexicon-constrained CTC beam search with a KenLM n-gram (flashlight-text).

The trie over lexicon spellings and the KenLM model are built once; a decoder for a given
setting (beam, LM weight, word score, ...) is cheap to make, so the LM-weight search reuses them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from dinosr_espnet.decode.lexicon import read_lexicon
from dinosr_espnet.decode.tokens import UNKNOWN, CtcTokens


@dataclass(frozen=True)
class BeamSettings:
    """One decoding setting; defaults are fairseq's FlashlightDecoderConfig defaults (spec 4)."""

    beam: int = 50  # hypotheses kept per frame
    beam_size_token: int = 0  # tokens considered per frame; 0 = the whole vocabulary
    beam_threshold: float = 50.0  # prune hypotheses this far below the best
    lm_weight: float = 2.0
    word_score: float = -1.0  # added per emitted word (negative = insertion penalty)
    sil_weight: float = 0.0  # added per word-boundary (silence) token
    unk_weight: float = -math.inf  # score of out-of-lexicon words; -inf forbids them
    log_add: bool = False  # merge equal hypotheses by log-add instead of max
    nbest: int = 1

    def with_weights(self, lm_weight: float, word_score: float) -> "BeamSettings":
        return replace(self, lm_weight=float(lm_weight), word_score=float(word_score))

    def to_dict(self) -> dict:
        values = asdict(self)
        values["unk_weight"] = None if math.isinf(self.unk_weight) else self.unk_weight  # JSON-safe
        return values

    @classmethod
    def from_dict(cls, values: dict, where: str = "decode config") -> "BeamSettings":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown beam setting(s) {unknown}; known: {sorted(known)}")
        values = dict(values)
        if values.get("unk_weight") is None and "unk_weight" in values:
            values["unk_weight"] = -math.inf
        if isinstance(values.get("unk_weight"), str):
            values["unk_weight"] = float(values["unk_weight"])  # "-inf" in YAML
        return cls(**values)


@dataclass
class WordHypothesis:
    words: List[str]
    score: float  # total decoder score (acoustic + weighted LM + word/silence scores)
    lm_score: float

    @property
    def text(self) -> str:
        return " ".join(self.words)


class LexiconBeamDecoder:
    """Lexicon + KenLM CTC decoder over an ESPnet char token list.

    Args:
        tokens: the CTC inventory (blank and word boundary resolved by name).
        lexicon: a lexicon file or ``{word: [[token, ...], ...]}``; spellings end with the boundary.
        lm: KenLM ARPA or binary file.
    """

    def __init__(self, tokens: CtcTokens, lexicon: Union[str, Path, Dict[str, List[List[str]]]],
                 lm: Union[str, Path]):
        from flashlight.lib.text.decoder import SmearingMode, Trie
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict

        lm_path = Path(lm)
        if not lm_path.is_file():
            raise FileNotFoundError(f"language model not found: {lm_path} (stage 5, bin/build_lm.py, writes it)")
        spellings = read_lexicon(lexicon, tokens) if isinstance(lexicon, (str, Path)) else lexicon
        self.tokens = tokens
        self.token_dict = Dictionary(list(tokens.tokens))
        # flashlight needs "<unk>" in the word dictionary (toolchain facts 2); it gets no spelling.
        self.word_dict = create_word_dict({**spellings, UNKNOWN: []})
        self.unknown_word_index = self.word_dict.get_index(UNKNOWN)
        self.lm = KenLM(str(lm_path), self.word_dict)
        self.trie = Trie(len(tokens), tokens.boundary_index)
        start_state = self.lm.start(False)
        for word, word_spellings in spellings.items():
            word_index = self.word_dict.get_index(word)
            _, unigram_score = self.lm.score(start_state, word_index)
            for spelling in word_spellings:
                self.trie.insert([self.token_dict.get_index(token) for token in spelling], word_index, unigram_score)
        self.trie.smear(SmearingMode.MAX)
        self.num_words = len(spellings)

    def decoder(self, settings: BeamSettings):
        """A flashlight LexiconDecoder for one setting (cheap: the trie and LM are shared)."""
        from flashlight.lib.text.decoder import CriterionType, LexiconDecoder, LexiconDecoderOptions

        options = LexiconDecoderOptions(
            beam_size=int(settings.beam),
            beam_size_token=int(settings.beam_size_token or len(self.tokens)),
            beam_threshold=float(settings.beam_threshold),
            lm_weight=float(settings.lm_weight),
            word_score=float(settings.word_score),
            unk_score=float(settings.unk_weight),
            sil_score=float(settings.sil_weight),
            log_add=bool(settings.log_add),
            criterion_type=CriterionType.CTC,
        )
        return LexiconDecoder(options, self.trie, self.lm, self.tokens.boundary_index, self.tokens.blank_index,
                              self.unknown_word_index, [], False)

    def decode(self, log_probs: np.ndarray, settings: BeamSettings, decoder=None) -> List[WordHypothesis]:
        """n-best word hypotheses of one utterance, best first.

        Args:
            log_probs: ``[frame, vocab]`` CTC log-posteriors.
        """
        if log_probs.ndim != 2 or log_probs.shape[1] != len(self.tokens):
            raise ValueError(f"expected log-probs [frame, {len(self.tokens)}], got {tuple(log_probs.shape)}")
        if log_probs.shape[0] == 0:
            return [WordHypothesis([], 0.0, 0.0)]
        decoder = decoder or self.decoder(settings)
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        frames, vocab = emissions.shape
        results = decoder.decode(emissions.ctypes.data, frames, vocab)
        hypotheses = []
        for result in results[: max(1, settings.nbest)]:
            words = [self.word_dict.get_entry(index) for index in result.words if index >= 0]
            hypotheses.append(WordHypothesis(words, float(result.score), float(result.lmScore)))
        return hypotheses or [WordHypothesis([], -math.inf, 0.0)]


# What forked workers inherit (flashlight objects cannot be pickled, but survive fork).
_SHARED: dict = {}


def _decode_indices(indices: List[int]) -> List[Tuple[int, List[WordHypothesis]]]:
    decoder, settings, emissions = _SHARED["decoder"], _SHARED["settings"], _SHARED["emissions"]
    flashlight_decoder = decoder.decoder(settings)
    return [(index, decoder.decode(emissions[index], settings, flashlight_decoder)) for index in indices]


def decode_all(emissions: Sequence[np.ndarray], decoder: LexiconBeamDecoder, settings: BeamSettings,
               progress: Optional[str] = None, num_workers: int = 1) -> List[List[WordHypothesis]]:
    """Decode every utterance (each ``[frame, vocab]``) with one setting, in order.

    ``num_workers`` > 1 splits the utterances over forked processes (Linux), each with its own
    decoder over the shared trie and LM. This is the function the benchmark times: it does no I/O.
    """
    if num_workers > 1 and len(emissions) > 1:
        import multiprocessing

        _SHARED.update(decoder=decoder, settings=settings, emissions=emissions)
        chunks = num_workers * 4  # interleaved chunks balance long and short utterances
        work = [list(range(start, len(emissions), chunks)) for start in range(min(chunks, len(emissions)))]
        hypotheses: List[Optional[List[WordHypothesis]]] = [None] * len(emissions)
        try:
            with multiprocessing.get_context("fork").Pool(num_workers) as pool:
                for done, pairs in enumerate(pool.imap_unordered(_decode_indices, work), start=1):
                    for index, nbest in pairs:
                        hypotheses[index] = nbest
                    if progress and done % num_workers == 0:
                        print(f"{progress}: {done}/{len(work)} chunks", flush=True)
        finally:
            _SHARED.clear()
        return hypotheses
    flashlight_decoder = decoder.decoder(settings)
    hypotheses = []
    for index, log_probs in enumerate(emissions):
        hypotheses.append(decoder.decode(log_probs, settings, flashlight_decoder))
        if progress and (index + 1) % 500 == 0:
            print(f"{progress}: {index + 1}/{len(emissions)} utterances", flush=True)
    return hypotheses
