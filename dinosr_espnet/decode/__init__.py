"""Lexicon + n-gram CTC decoding, LM building, LM-weight search and scoring.

Modules, one job each (none imports ESPnet at import time):

- ``tokens``: the ESPnet char token list and its blank / word-boundary / unknown indices.
- ``emissions``: batched encoder forward of an ESPnet ASR model -> stored CTC log-probs (data dirs come from
  ``data.kaldi_data``, audio from ``data.audio``; ``wav.scp`` order is the order of every output).
- ``greedy``: Viterbi (best-path) CTC decoding.
- ``lexicon``, ``lm_building``: the word lexicon spelled in tokens; KenLM lmplz / build_binary.
- ``lexicon_decoder``: flashlight-text LexiconDecoder + KenLM; ``decode_all`` is what benchmarks time.
- ``decode_config``, ``search``: conf/decode*.yaml; LM weight / word score search on the tune set.
- ``scoring``: own edit-distance alignment, WER / CER with S/D/I, sclite ``trn`` files, ``score.json``.
- ``cli``: the model, output and device options of ``bin/decode.py`` and ``bin/asr_inference.py``.
- ``pipeline``: stage 6 (``bin/decode.py``); ``results_table``: stage 7 RESULTS.md (``bin/score.py``).
"""
