"""Fast in-process checks of the benchmark's pieces (no timing)."""
import pytest

from dinosr_espnet.benchmark import runner
from dinosr_espnet.benchmark.data_section import batch_waste
from dinosr_espnet.benchmark.report import SectionResult, to_markdown
from dinosr_espnet.benchmark.settings import BenchmarkSettings
from dinosr_espnet.benchmark.synthetic_decoding import TOKEN_LIST, make_emissions, sentence_tokens


def test_section_whose_code_is_missing_is_reported_not_yet_measurable(monkeypatch):
    monkeypatch.setitem(runner.SECTION_RUNNERS, "decode", ("no_such_section_module", "run"))
    settings = BenchmarkSettings(sections=("decode",), smallest=True)
    _, results = runner.run_benchmark(settings, log=lambda message: None)
    assert results[0].status.startswith("not yet measurable")
    assert "no_such_section_module" in results[0].status
    assert "not yet measurable" in to_markdown({}, {}, results)


def test_length_sorted_batches_waste_less_padding_than_random_ones():
    lengths = list(range(16000, 16000 * 16, 997))
    random_padding, random_crop = batch_waste(lengths, 8, sort=False, seed=0)
    sorted_padding, sorted_crop = batch_waste(lengths, 8, sort=True, seed=0)
    assert sorted_padding < random_padding and sorted_crop < random_crop


def test_equal_lengths_waste_nothing():
    assert batch_waste([32000] * 20, 8, sort=False, seed=0) == (0.0, 0.0)


def test_synthetic_emissions_spell_their_transcript_on_the_best_path():
    sentence = "BA KOTU"
    emission = make_emissions([sentence], seed=0)[0]
    assert emission.shape[1] == len(TOKEN_LIST)
    best = emission.argmax(axis=1)
    collapsed = [token for index, token in enumerate(best)
                 if token != 0 and (index == 0 or token != best[index - 1])]
    # noise may flip a few frames, but most of the transcript's tokens must be on the best path
    expected = sentence_tokens(sentence)
    assert sum(token in collapsed for token in expected) >= len(expected) - 1


def test_data2vec_reference_matches_the_student_parameter_count():
    pytest.importorskip("transformers")
    from dinosr_espnet.benchmark.reference import build_reference
    from dinosr_espnet.nets import SpeechEncoder, dinosr_tiny
    import torch

    config = dinosr_tiny()
    reference = build_reference(config, torch.device("cpu"))
    count = lambda module: sum(parameter.numel() for parameter in module.parameters())  # noqa: E731
    assert count(reference) == count(SpeechEncoder(config))


def test_section_result_keeps_figures_in_order():
    result = SectionResult("model")
    result.add("a", 1, "x")
    result.add("b", 2.5, "y")
    assert [figure.name for figure in result.figures] == ["a", "b"]
    assert result.figures[1].value == 2.5
