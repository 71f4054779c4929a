"""Lexicon + 4-gram decoding recovers words that greedy decoding gets wrong, on generated posteriors."""
import math

import numpy as np
import pytest
from conftest import run_module
from decode_fixtures import TOKENS, noisy_posteriors, require_kenlm, sentences, write_token_list

from dinosr_espnet.decode.greedy import greedy_decode, greedy_decode_all
from dinosr_espnet.decode.lexicon import build_lexicon, read_lexicon
from dinosr_espnet.decode.lexicon_decoder import BeamSettings, LexiconBeamDecoder, decode_all
from dinosr_espnet.decode.lm_building import build_lm
from dinosr_espnet.decode.search import word_errors
from dinosr_espnet.decode.tokens import ctc_tokens


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    kenlm_bin_dir = require_kenlm()
    directory = tmp_path_factory.mktemp("lm")
    text = directory / "lm_text.txt"
    text.write_text("\n".join(sentences(400, seed=1)) + "\nNAÏVE CAFÉ WORDS\n", encoding="utf-8")
    files = build_lm(directory / "out", write_token_list(directory / "tokens.txt"), text=text, order=4,
                     kenlm_bin_dir=kenlm_bin_dir, log=lambda *_: None)
    return files


def test_greedy_merges_repeats_and_drops_blanks():
    tokens = ctc_tokens(TOKENS)
    path = ["<blank>", "A", "A", "<blank>", "A", "<space>", "<space>", "B", "<sos/eos>"]
    log_probs = np.full((len(path), len(TOKENS)), -10.0, dtype=np.float32)
    for frame, token in enumerate(path):
        log_probs[frame, TOKENS.index(token)] = 0.0
    hypothesis = greedy_decode(log_probs, tokens)
    assert hypothesis.text == "AA B"
    assert [TOKENS[i] for i in hypothesis.token_ids] == ["A", "A", "<space>", "B", "<sos/eos>"]


def test_token_list_indices_are_found_by_name():
    shuffled = ["<blank>", "A", "|", "B", "<unk>"]
    tokens = ctc_tokens(shuffled)
    assert (tokens.blank_index, tokens.boundary_index, tokens.unknown_index) == (0, 2, 4)
    assert ctc_tokens(TOKENS).boundary_index == TOKENS.index("<space>")
    with pytest.raises(ValueError, match="word-boundary"):
        ctc_tokens(["<blank>", "A"])


def test_lm_build_writes_arpa_binary_and_lexicon_skipping_unspellable_words(language_model):
    assert language_model.arpa.stat().st_size > 0 and language_model.binary.stat().st_size > 0
    assert "\\4-grams:" in language_model.arpa.read_text()
    lexicon = read_lexicon(language_model.lexicon, ctc_tokens(TOKENS))
    assert lexicon["CAT"] == [["C", "A", "T", "<space>"]]
    assert "NAÏVE" not in lexicon and "CAFÉ" not in lexicon
    assert language_model.skipped_words == 2


def test_lm_build_is_idempotent(language_model, tmp_path):
    before = {path: path.stat().st_mtime_ns for path in (language_model.arpa, language_model.binary)}
    text = language_model.arpa.parent.parent / "lm_text.txt"
    build_lm(language_model.arpa.parent, language_model.arpa.parent.parent / "tokens.txt", text=text,
             kenlm_bin_dir=require_kenlm(), log=lambda *_: None)
    assert {path: path.stat().st_mtime_ns for path in before} == before


def test_lexicon_lm_decoder_recovers_words_greedy_gets_wrong(language_model):
    tokens = ctc_tokens(TOKENS)
    references = sentences(30, seed=7)
    emissions = [noisy_posteriors(text, TOKENS, noise=2.2, seed=index) for index, text in enumerate(references)]
    greedy_wer = word_errors(references, [h.text for h in greedy_decode_all(emissions, tokens)]).error_rate
    decoder = LexiconBeamDecoder(tokens, language_model.lexicon, language_model.binary)
    hypotheses = decode_all(emissions, decoder, BeamSettings(beam=50, lm_weight=2.0, word_score=-1.0))
    lm_wer = word_errors(references, [h[0].text for h in hypotheses]).error_rate
    assert greedy_wer > 40.0, f"noise too weak to test anything: greedy WER {greedy_wer:.1f}"
    assert lm_wer < greedy_wer / 4, f"greedy {greedy_wer:.1f} vs lexicon+LM {lm_wer:.1f}"


def test_nbest_is_sorted_and_distinct(language_model):
    tokens = ctc_tokens(TOKENS)
    decoder = LexiconBeamDecoder(tokens, language_model.lexicon, language_model.arpa)
    emissions = noisy_posteriors("THE CAT SAW A DOG", TOKENS, noise=2.0, seed=0)
    nbest = decoder.decode(emissions, BeamSettings(beam=50, nbest=4))
    assert 1 < len(nbest) <= 4
    scores = [h.score for h in nbest]
    assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
    assert len({h.text for h in nbest}) == len(nbest)


def test_missing_lm_or_lexicon_is_a_clear_error(language_model, tmp_path):
    tokens = ctc_tokens(TOKENS)
    with pytest.raises(FileNotFoundError, match="language model not found"):
        LexiconBeamDecoder(tokens, language_model.lexicon, tmp_path / "missing.bin")
    with pytest.raises(FileNotFoundError, match="lexicon not found"):
        LexiconBeamDecoder(tokens, tmp_path / "missing_lexicon.txt", language_model.binary)


def test_lexicon_built_from_words_spells_with_the_boundary_token():
    lexicon = build_lexicon(["<s>", "DON'T", "CAT", "ÉCOLE", "CAT"], ctc_tokens(["<blank>", "|"] + list("ACDNOT'")))
    assert lexicon.spellings == {"DON'T": [list("DON'T") + ["|"]], "CAT": [["C", "A", "T", "|"]]}
    assert list(lexicon.skipped) == ["ÉCOLE"]


def test_build_lm_without_kenlm_says_how_to_build_it(tmp_path):
    (tmp_path / "text.txt").write_text("THE CAT\n")
    result = run_module("dinosr_espnet.bin.build_lm", "--text", str(tmp_path / "text.txt"), "--token_list",
                        str(write_token_list(tmp_path / "tokens.txt")), "--out_dir", str(tmp_path / "out"),
                        "--kenlm_bin_dir", str(tmp_path / "no_kenlm"), check=False)
    assert result.returncode == 2
    assert "lmplz not found" in result.stderr and "make install" in result.stderr


def test_build_lm_takes_an_existing_gzipped_arpa(language_model, tmp_path):
    import gzip

    official = tmp_path / "official_4gram.arpa.gz"
    official.write_bytes(gzip.compress(language_model.arpa.read_bytes()))
    run_module("dinosr_espnet.bin.build_lm", "--arpa", str(official), "--token_list",
               str(write_token_list(tmp_path / "tokens.txt")), "--out_dir", str(tmp_path / "out"),
               "--kenlm_bin_dir", str(require_kenlm()))
    assert (tmp_path / "out" / "4gram.arpa").read_bytes() == language_model.arpa.read_bytes()
    assert (tmp_path / "out" / "4gram.bin").is_file()
    assert read_lexicon(tmp_path / "out" / "lexicon.txt") == read_lexicon(language_model.lexicon)


def test_parallel_decoding_matches_serial_order_and_results(language_model):
    tokens = ctc_tokens(TOKENS)
    references = sentences(9, seed=11)
    emissions = [noisy_posteriors(text, TOKENS, noise=2.2, seed=index) for index, text in enumerate(references)]
    decoder = LexiconBeamDecoder(tokens, language_model.lexicon, language_model.binary)
    settings = BeamSettings(beam=20, nbest=2)
    serial = decode_all(emissions, decoder, settings)
    parallel = decode_all(emissions, decoder, settings, num_workers=2)
    assert [[(h.text, h.score) for h in nbest] for nbest in parallel] == [
        [(h.text, h.score) for h in nbest] for nbest in serial]
