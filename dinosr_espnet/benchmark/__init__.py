"""Throughput, memory and overhead benchmarks (``python -m dinosr_espnet.bin.benchmark``).

Every figure is a median over repeats after warm-up, measured against a reference taken in the
same process (Hugging Face's Data2VecAudioModel for the student, a large matmul for the machine's
ceiling) so that a shared or loaded machine shifts both sides alike.

Modules: ``measure`` (timing and peak memory), ``environment`` (machine and versions),
``report`` (figures, markdown, JSON), one module per section (``model_section``,
``training_section``, ``data_section``, ``decode_section``) and ``synthetic_decoding``
(emissions and a KenLM 4-gram built from known transcripts).
"""
