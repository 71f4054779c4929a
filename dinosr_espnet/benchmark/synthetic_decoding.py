"""Synthetic CTC emissions of known transcripts and a small KenLM 4-gram, for timing decoders.

Words are pronounceable letter strings; sentences come from a Markov chain in which each word
prefers a few successors, so a 4-gram has structure to exploit. Emissions follow the character
token list of docs/INTERFACES.md section 2: 1-4 frames per token, blanks between, and noise that
makes about one frame in ten argmax to a wrong token.
"""
import random
import subprocess
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from dinosr_espnet.asr.token_list import char_token_list
from dinosr_espnet.constants import FRAME_SECONDS

TOKEN_LIST = char_token_list()
CONSONANTS, VOWELS = "BCDFGHKLMNPRSTVWZ", "AEIOU"


def make_vocabulary(size: int, seed: int) -> List[str]:
    generator = random.Random(seed)
    words = set()
    while len(words) < size:
        syllables = generator.choice((1, 1, 2, 2, 2, 3))
        words.add("".join(generator.choice(CONSONANTS) + generator.choice(VOWELS) for _ in range(syllables))
                  + (generator.choice(CONSONANTS) if generator.random() < 0.4 else ""))
    return sorted(words)


def make_sentences(vocabulary: Sequence[str], count: int, seed: int, chain_seed: int = 0) -> List[str]:
    """``count`` sentences of 5-15 words from a fixed Markov chain (``chain_seed``)."""
    chain = random.Random(chain_seed)
    successors = {word: chain.sample(vocabulary, 4) for word in vocabulary}
    generator = random.Random(seed)
    sentences = []
    for _ in range(count):
        word = generator.choice(vocabulary)
        words = [word]
        for _ in range(generator.randint(4, 14)):
            word = generator.choice(successors[word]) if generator.random() < 0.85 else generator.choice(vocabulary)
            words.append(word)
        sentences.append(" ".join(words))
    return sentences


def sentence_tokens(sentence: str) -> List[int]:
    indices = []
    for position, word in enumerate(sentence.split()):
        if position:
            indices.append(TOKEN_LIST.index("<space>"))
        indices += [TOKEN_LIST.index(letter) for letter in word]
    return indices


def make_emission(sentence: str, generator: np.random.Generator) -> np.ndarray:
    """``[frame, vocab]`` float32 log-probabilities whose best path mostly spells ``sentence``."""
    blank = TOKEN_LIST.index("<blank>")
    frame_labels = [blank] * int(generator.integers(2, 6))
    previous = None
    for token in sentence_tokens(sentence):
        if token == previous or generator.random() < 0.5:
            frame_labels += [blank] * int(generator.integers(1, 3))
        frame_labels += [token] * int(generator.integers(1, 5))
        previous = token
    frame_labels += [blank] * int(generator.integers(2, 6))
    frames, vocab = len(frame_labels), len(TOKEN_LIST)
    logits = generator.normal(0.0, 1.0, (frames, vocab))
    logits[np.arange(frames), frame_labels] += 4.5
    logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits.astype(np.float32)


def make_emissions(sentences: Sequence[str], seed: int) -> List[np.ndarray]:
    generator = np.random.default_rng(seed)
    return [make_emission(sentence, generator) for sentence in sentences]


def build_kenlm_4gram(sentences: Sequence[str], kenlm_bin: Path, directory: Path) -> Path:
    """ARPA 4-gram from ``sentences`` with ``lmplz --discount_fallback`` (small corpora need it)."""
    lmplz = Path(kenlm_bin) / "lmplz"
    if not lmplz.is_file():
        raise FileNotFoundError(f"KenLM lmplz not found at {lmplz} (make kenlm builds it; --kenlm_bin sets the directory)")
    arpa = Path(directory) / "4gram.arpa"
    with open(arpa, "w") as output:
        process = subprocess.run([str(lmplz), "-o", "4", "--discount_fallback", "-S", "10%", "-T", str(directory)],
                                 input="\n".join(sentences) + "\n", stdout=output, stderr=subprocess.PIPE,
                                 text=True)
    if process.returncode != 0:
        raise RuntimeError(f"{lmplz} failed ({process.returncode}): {process.stderr[-2000:]}")
    return arpa


def audio_seconds(emissions: Sequence[np.ndarray]) -> float:
    return sum(emission.shape[0] for emission in emissions) * FRAME_SECONDS


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    import editdistance

    errors = sum(editdistance.eval(reference.split(), hypothesis.split())
                 for reference, hypothesis in zip(references, hypotheses))
    return errors / max(sum(len(reference.split()) for reference in references), 1)


def corpus(settings_seed: int, utterances: int, lm_sentences: int = 3000, vocabulary_size: int = 1000
           ) -> Tuple[List[str], List[str], List[str], List[np.ndarray]]:
    """(vocabulary, LM sentences, test transcripts, test emissions); test transcripts are not LM text."""
    vocabulary = make_vocabulary(vocabulary_size, settings_seed)
    lm_text = make_sentences(vocabulary, lm_sentences, seed=settings_seed + 1)
    transcripts = make_sentences(vocabulary, utterances, seed=settings_seed + 2)
    return vocabulary, lm_text, transcripts, make_emissions(transcripts, settings_seed + 3)
