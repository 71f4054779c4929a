"""Generated fixtures for the decode tests: a char token list, a small LM corpus, noisy CTC posteriors."""
from __future__ import annotations

import random
import string
from pathlib import Path
from typing import List

import numpy as np
import pytest

from dinosr_espnet.decode.lm_building import DEFAULT_KENLM_BIN_DIR

TOKENS = ["<blank>", "<unk>", "<space>", "'"] + list(string.ascii_uppercase) + ["<sos/eos>"]

SUBJECTS = ["THE CAT", "A DOG", "THE OLD MAN", "MY SISTER", "THE KING", "HIS HORSE", "OUR TEACHER", "THE GIRL"]
VERBS = ["SAW", "FOUND", "HEARD", "KNEW", "LOVED", "FOLLOWED", "CALLED", "HELPED"]
OBJECTS = ["THE BIRD", "A STRANGER", "HER FRIEND", "THE SOLDIERS", "THE CHILDREN", "A WOMAN", "THE PRIEST", "HIS BROTHER"]
PLACES = ["IN THE GARDEN", "AT NIGHT", "BY THE RIVER", "IN THE CITY", "ON THE HILL", "NEAR THE HOUSE"]


def sentences(count: int, seed: int) -> List[str]:
    generator = random.Random(seed)
    return [" ".join([generator.choice(SUBJECTS), generator.choice(VERBS), generator.choice(OBJECTS),
                      generator.choice(PLACES)]) for _ in range(count)]


def noisy_posteriors(text: str, tokens: List[str], noise: float, seed: int, frames_per_token: int = 2) -> np.ndarray:
    """``[frame, vocab]`` log-posteriors: each character peaks for a few frames, blanks between, plus noise.

    The noise is Gaussian on the logits, so some frames' argmax flips to a wrong character.
    """
    generator = np.random.default_rng(seed)
    index = {token: i for i, token in enumerate(tokens)}
    path = [0]
    for char in " ".join(text.split()):
        path += [index["<space>" if char == " " else char]] * frames_per_token + [0]
    logits = np.full((len(path), len(tokens)), 0.0)
    logits[np.arange(len(path)), path] = 6.0
    logits += noise * generator.standard_normal(logits.shape)
    logits[:, index["<sos/eos>"]] = -30.0
    logits -= logits.max(axis=1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


def require_kenlm() -> Path:
    if not (DEFAULT_KENLM_BIN_DIR / "lmplz").is_file() or not (DEFAULT_KENLM_BIN_DIR / "build_binary").is_file():
        pytest.skip(f"KenLM lmplz/build_binary not built in {DEFAULT_KENLM_BIN_DIR} (`make install` builds them)")
    return DEFAULT_KENLM_BIN_DIR


def write_token_list(path: Path) -> Path:
    path.write_text("".join(token + "\n" for token in TOKENS), encoding="utf-8")
    return path


def build_test_lm(directory: Path, token_list: Path):
    """A 4-gram over the generated sentences (lmplz), with its lexicon; skips without KenLM."""
    from dinosr_espnet.decode.lm_building import build_lm

    kenlm_bin_dir = require_kenlm()
    text = directory / "lm_text.txt"
    text.write_text("\n".join(sentences(400, seed=1)) + "\n", encoding="utf-8")
    return build_lm(directory / "lm", token_list, text=text, order=4, kenlm_bin_dir=kenlm_bin_dir, log=lambda *_: None)


def write_data_dir(directory: Path, utt_ids: List[str], texts: List[str], wav_paths: List[str] = None) -> Path:
    """A Kaldi data dir whose wav.scp keeps the given (deliberately unsorted) order."""
    directory.mkdir(parents=True, exist_ok=True)
    wav_paths = wav_paths or [f"/nonexistent/{u}.flac" for u in utt_ids]
    (directory / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in zip(utt_ids, wav_paths)))
    (directory / "text").write_text("".join(f"{u} {t}\n" for u, t in zip(utt_ids, texts)))
    (directory / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utt_ids))
    return directory
