"""The WER/CER scorer against independent counts (jiwer, and sclite when installed)."""
import json

import jiwer
import pytest

from dinosr_espnet.decode.scoring import (SCLITE, align, characters, read_trn, score_set, score_texts,
                                          sclite_word_errors)

PAIRS = [  # (reference, hypothesis), including empty hypotheses and an empty reference
    ("THE CAT SAT ON THE MAT", "THE CAT SAT MAT"),
    ("A B C", "A X B C D"),
    ("HELLO WORLD", ""),
    ("", "SPURIOUS WORDS"),
    ("I DO NOT KNOW", "I DON'T KNOW"),
    ("ONE TWO THREE FOUR", "FOUR THREE TWO ONE"),
    ("SAME WORDS HERE", "SAME WORDS HERE"),
    ("", ""),
]


def test_word_counts_agree_with_jiwer_per_pair():
    for reference, hypothesis in PAIRS:
        counts = align(reference.split(), hypothesis.split())
        expected = jiwer.process_words([reference], [hypothesis])
        assert counts.errors == expected.substitutions + expected.deletions + expected.insertions, (reference, hypothesis)
        assert counts.hits == expected.hits, (reference, hypothesis)
        assert (counts.substitutions, counts.deletions, counts.insertions) == (
            expected.substitutions, expected.deletions, expected.insertions), (reference, hypothesis)


def test_corpus_wer_and_cer_agree_with_jiwer():
    references = {f"u{i}": r for i, (r, _) in enumerate(PAIRS)}
    hypotheses = {f"u{i}": h for i, (_, h) in enumerate(PAIRS)}
    counts = score_texts(references, hypotheses)
    expected_words = jiwer.process_words(list(references.values()), list(hypotheses.values()))
    expected_wer = 100 * (expected_words.substitutions + expected_words.deletions + expected_words.insertions) / sum(
        len(r.split()) for r in references.values())
    assert counts["word"].error_rate == pytest.approx(expected_wer)
    char_refs = ["".join(characters(r)) for r in references.values()]
    char_hyps = ["".join(characters(h)) for h in hypotheses.values()]
    expected_chars = jiwer.process_characters(char_refs, char_hyps)
    char_errors = expected_chars.substitutions + expected_chars.deletions + expected_chars.insertions
    assert counts["char"].errors == char_errors
    assert counts["char"].reference_length == sum(len(r) for r in char_refs)


def test_empty_reference_set_is_zero_only_without_errors():
    assert score_texts({"a": ""}, {"a": ""})["word"].error_rate == 0.0
    assert score_texts({"a": ""}, {"a": "X"})["word"].error_rate == float("inf")


def test_missing_hypothesis_is_an_error():
    with pytest.raises(ValueError, match="no hypothesis"):
        score_texts({"a": "X", "b": "Y"}, {"a": "X"})


def test_score_set_writes_trn_files_and_score_json(tmp_path):
    references = {"spk1-1": "THE CAT SAT", "spk1-2": "A DOG"}
    hypotheses = {"spk1-2": "A DOG", "spk1-1": "THE BAT"}
    summary = score_set(tmp_path, references, hypotheses, {"spk1-1": "spk1", "spk1-2": "spk1"})
    assert (tmp_path / "ref.trn").read_text().splitlines() == ["THE CAT SAT (spk1-spk1-1)", "A DOG (spk1-spk1-2)"]
    assert read_trn(tmp_path / "hyp.trn") == {"spk1-spk1-1": "THE BAT", "spk1-spk1-2": "A DOG"}
    stored = json.loads((tmp_path / "score.json").read_text())
    assert stored["wer"] == summary["wer"] == pytest.approx(100 * 2 / 5)
    assert stored["word"]["substitutions"] == 1 and stored["word"]["deletions"] == 1


@pytest.mark.skipif(not SCLITE.is_file(), reason=f"sclite not installed at {SCLITE} (apt-get install sctk)")
def test_word_errors_agree_with_sclite(tmp_path):
    pairs = [(r, h) for r, h in PAIRS if r]  # sclite cannot key an empty reference line usefully
    references = {f"s-{i}": r for i, (r, _) in enumerate(pairs)}
    hypotheses = {f"s-{i}": h for i, (_, h) in enumerate(pairs)}
    summary = score_set(tmp_path, references, hypotheses)
    errors, words = sclite_word_errors(tmp_path / "ref.trn", tmp_path / "hyp.trn")
    assert words == summary["word"]["reference_length"]
    assert errors == summary["word"]["errors"]


def test_random_pairs_agree_with_jiwer_on_error_totals():
    import random

    generator = random.Random(3)
    vocabulary = ["A", "B", "C", "D"]
    for _ in range(200):
        reference = " ".join(generator.choice(vocabulary) for _ in range(generator.randint(1, 8)))
        hypothesis = " ".join(generator.choice(vocabulary) for _ in range(generator.randint(0, 8)))
        counts = align(reference.split(), hypothesis.split())
        expected = jiwer.process_words([reference], [hypothesis])
        assert counts.errors == expected.substitutions + expected.deletions + expected.insertions
        # equal-error alignments can differ; ours takes the one with the most hits (sclite's choice)
        assert counts.hits >= expected.hits
        assert counts.hits + counts.substitutions + counts.deletions == len(reference.split())
