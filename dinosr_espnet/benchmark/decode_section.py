"""Section "decode": real-time factor of greedy and lexicon + KenLM 4-gram decoding.

RTF = decoding seconds / audio seconds (50 frames per second of audio), on synthetic emissions
of known transcripts (``synthetic_decoding``), with the project's ``decode`` package.
"""
import tempfile
from pathlib import Path

import torch

from dinosr_espnet.benchmark.environment import REPO_ROOT
from dinosr_espnet.benchmark.measure import measure_interleaved
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings
from dinosr_espnet.benchmark.synthetic_decoding import (TOKEN_LIST, audio_seconds, build_kenlm_4gram, corpus,
                                                        word_error_rate)


def run_decode_section(settings: BenchmarkSettings, log) -> SectionResult:
    from dinosr_espnet.decode.greedy import greedy_decode_all
    from dinosr_espnet.decode.tokens import ctc_tokens

    result = SectionResult("decode")
    vocabulary, lm_text, transcripts, emissions = corpus(settings.seed, settings.decode_utterances)
    seconds = audio_seconds(emissions)
    tokens = ctc_tokens(TOKEN_LIST)
    cpu = torch.device("cpu")
    log(f"decode: {len(emissions)} utterances, {seconds:.1f} s of audio")
    greedy_decode_all(emissions[:2], tokens)  # warm-up: decoding has no caches to fill
    greedy = measure_interleaved({"greedy": lambda: greedy_decode_all(emissions, tokens)}, cpu,
                                 0, settings.repeats)["greedy"]
    greedy_wer = word_error_rate(transcripts, [h.text for h in greedy_decode_all(emissions, tokens)])
    result.add("greedy_rtf", greedy.median_seconds / seconds, "RTF",
               f"{seconds:.0f} s of audio; WER {100 * greedy_wer:.1f}%; "
               f"process-CPU RTF {greedy.median_cpu_seconds / seconds:.3g}")

    kenlm_bin = Path(settings.kenlm_bin)
    kenlm_bin = kenlm_bin if kenlm_bin.is_absolute() else REPO_ROOT / kenlm_bin
    try:
        from dinosr_espnet.decode.lexicon import build_lexicon
        from dinosr_espnet.decode.lexicon_decoder import BeamSettings, LexiconBeamDecoder, decode_all
    except ImportError as error:
        result.messages.append(f"lexicon + 4-gram: not yet measurable ({error})")
        return result
    with tempfile.TemporaryDirectory(prefix="dinosr_bench_lm_") as directory:
        try:
            arpa = build_kenlm_4gram(lm_text, kenlm_bin, Path(directory))
        except FileNotFoundError as error:
            result.messages.append(f"lexicon + 4-gram: not yet measurable ({error})")
            return result
        lexicon = build_lexicon(vocabulary, tokens).spellings
        decoder = LexiconBeamDecoder(tokens, lexicon, arpa)
        for beam in settings.decode_beams:
            beam_settings = BeamSettings(beam=beam)
            log(f"decode: lexicon + 4-gram, beam {beam}")
            hypotheses = decode_all(emissions[:2], decoder, beam_settings)  # warm-up on two utterances
            timing = measure_interleaved({"lexicon": lambda: hypotheses.__setitem__(
                slice(None), decode_all(emissions, decoder, beam_settings))}, cpu, 0, settings.repeats)["lexicon"]
            wer = word_error_rate(transcripts, [hypothesis[0].text for hypothesis in hypotheses])
            target = "; target < 0.05 on CPU" if beam == 500 else ""
            result.add(f"lexicon_4gram_beam{beam}_rtf", timing.median_seconds / seconds, "RTF",
                       f"lm_weight {beam_settings.lm_weight}, word_score {beam_settings.word_score}; "
                       f"WER {100 * wer:.1f}%{target}")
            # CPU time of the (single-threaded) decoder: what the wall RTF would be on an idle core.
            result.add(f"lexicon_4gram_beam{beam}_process_cpu_rtf", timing.median_cpu_seconds / seconds, "RTF",
                       "process CPU seconds / audio seconds")
    return result
