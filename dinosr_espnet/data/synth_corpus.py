"""Generate the synthetic LibriSpeech-format corpus from a plan (see synth_plan.py).

Layout written under ``out``::

    LibriSpeech/<part>/<spk>/<chap>/<spk>-<chap>-<utt>.flac     16 kHz mono FLAC
    LibriSpeech/<part>/<spk>/<chap>/<spk>-<chap>.trans.txt      upper-case transcripts
    librispeech_finetuning/1h/<0..5>/{clean,other}/<spk>/<chap>/...   (hard links into LibriSpeech/)
    librispeech_finetuning/9h/{clean,other}/<spk>/<chap>/...
    alignments/<part>/<utt>.txt      one line: <utt> <phone_1> ... <phone_T> (20 ms frames)
    frame_phones.txt                 all of the above, sorted
    lm_text.txt                      normalised LM sentences (no dev/test sentence)
    speakers.tsv                     speaker, part, base voice, identity and warps
    text/sentence_pool.txt           the normalised sentence pool (cached)
    corpus_info.json + .complete     written last; .complete marks a finished corpus

Resumable: each utterance's alignment and FLAC are written atomically (FLAC last), utterances
with a FLAC are skipped, and ``.complete`` is only written after everything else.
"""
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from dinosr_espnet.atomic_files import atomic_path, atomic_write_text
from dinosr_espnet.data.audio_effects import add_noise, set_peak, sox_warp
from dinosr_espnet.data.phones import frame_labels
from dinosr_espnet.data.synth_plan import (ALL_PARTS, DEFAULT_HELDOUT_IDENTITIES, ChapterPlan, CorpusPlan,
                                           CorpusSizes, make_plan, plan_fingerprint, sizes_to_dict)
from dinosr_espnet.data.text_sources import normalized_sentence_pool
from dinosr_espnet.data.tts import BASE_VOICES, check_voice_installed, synthesize_batch

COMPLETE_MARKER = ".complete"
FINETUNE_FOLDS = 6


_atomic_write_text = atomic_write_text


def _atomic_write_flac(path: Path, audio: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        soundfile.write(str(temporary), np.clip(audio, -1.0, 1.0), 16000, subtype="PCM_16", format="FLAC")


def chapter_dir(out: Path, chapter: ChapterPlan) -> Path:
    return out / "LibriSpeech" / chapter.part / str(chapter.speaker.speaker) / str(chapter.chapter)


def _utterance_seed(seed: int, utterance_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{utterance_id}".encode()).digest()[:8], "little")


def synthesize_chapter(out: Path, seed: int, chapter: ChapterPlan) -> Tuple[int, float]:
    """Write the chapter's missing utterances; return (utterances written, seconds written)."""
    directory = chapter_dir(out, chapter)
    alignment_dir = out / "alignments" / chapter.part
    directory.mkdir(parents=True, exist_ok=True)
    alignment_dir.mkdir(parents=True, exist_ok=True)
    missing = [(uid, text) for uid, text in chapter.utterances if not (directory / f"{uid}.flac").exists()]
    if not missing:
        return 0, 0.0
    speaker = chapter.speaker
    results = synthesize_batch(BASE_VOICES[speaker.base_voice], [text for _, text in missing], speaker.duration_stretch)
    seconds = 0.0
    for (uid, _), (audio, (phones, ends)) in zip(missing, results):
        audio = sox_warp(audio, speaker.speed, speaker.pitch_cents)
        ends = [end / speaker.speed for end in ends]     # sox speed shortens time by 1/speed
        if speaker.snr_db > 0:
            audio = add_noise(audio, speaker.snr_db, np.random.default_rng(_utterance_seed(seed, uid)))
        audio = set_peak(audio, speaker.peak)
        labels = frame_labels(phones, ends, len(audio))
        _atomic_write_text(alignment_dir / f"{uid}.txt", " ".join([uid] + labels) + "\n")
        _atomic_write_flac(directory / f"{uid}.flac", audio)
        seconds += len(audio) / 16000
    return len(missing), seconds


def _worker(arguments: Tuple[str, int, ChapterPlan]) -> Tuple[int, float]:
    out, seed, chapter = arguments
    return synthesize_chapter(Path(out), seed, chapter)


def _load_sentence_pool(out: Path, text_sources: Sequence[str]) -> List[str]:
    cache = out / "text" / f"sentence_pool.{'+'.join(text_sources)}.txt"
    if cache.exists():
        return cache.read_text(encoding="utf-8").splitlines()
    pool = normalized_sentence_pool(text_sources)
    _atomic_write_text(cache, "\n".join(pool) + "\n")
    return pool


def _write_transcripts_and_tables(out: Path, plan: CorpusPlan) -> None:
    for chapter in plan.chapters:
        path = chapter_dir(out, chapter) / f"{chapter.speaker.speaker}-{chapter.chapter}.trans.txt"
        _atomic_write_text(path, "".join(f"{uid} {text}\n" for uid, text in chapter.utterances))
    rows = ["speaker\tpart\tbase_voice\tidentity\tduration_stretch\tspeed\tpitch_cents\tsnr_db\tpeak"]
    rows += ["\t".join(str(value) for value in (s.speaker, s.part, s.base_voice, s.identity, s.duration_stretch,
                                                  s.speed, s.pitch_cents, s.snr_db, s.peak)) for s in plan.speakers()]
    _atomic_write_text(out / "speakers.tsv", "\n".join(rows) + "\n")
    _atomic_write_text(out / "lm_text.txt", "\n".join(plan.lm_sentences) + "\n")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _utterance_seconds(out: Path, chapter: ChapterPlan) -> List[float]:
    directory = chapter_dir(out, chapter)
    return [soundfile.info(str(directory / f"{uid}.flac")).frames / 16000 for uid, _ in chapter.utterances]


def build_finetuning_tree(out: Path, plan: CorpusPlan, seed: int) -> Dict[str, float]:
    """Cut the Libri-light style tree out of train-clean-100 / train-other-500 by real durations.

    Each half of a 1h fold takes whole utterances from two speakers until it holds
    ``finetune_fold / 2`` seconds; 9h takes the next utterances until ``finetune_9h / 2``. Returns
    seconds per subset (``1h/0/clean`` ...).
    """
    root = out / "librispeech_finetuning"
    if root.exists():
        shutil.rmtree(root)
    sizes = plan.sizes
    totals: Dict[str, float] = {}
    for condition, part in (("clean", "train-clean-100"), ("other", "train-other-500")):
        by_speaker: Dict[int, List[Tuple[ChapterPlan, str, str, float]]] = {}
        for chapter in plan.chapters:
            if chapter.part == part:
                durations = _utterance_seconds(out, chapter)
                for (uid, text), seconds in zip(chapter.utterances, durations):
                    by_speaker.setdefault(chapter.speaker.speaker, []).append((chapter, uid, text, seconds))
        speakers = sorted(by_speaker)
        random.Random(f"{seed}:{condition}").shuffle(speakers)
        queue = [item for speaker in speakers for item in by_speaker[speaker]]   # speaker-major order
        position = 0
        subsets = [f"1h/{fold}/{condition}" for fold in range(FINETUNE_FOLDS)] + [f"9h/{condition}"]
        for subset in subsets:
            target = (sizes.finetune_9h if subset.startswith("9h") else sizes.finetune_fold) / 2
            taken, seconds = [], 0.0
            while seconds < target:
                if position >= len(queue):
                    raise ValueError(f"{part} is too short for the fine-tuning subset {subset}; raise its size")
                taken.append(queue[position])
                seconds += queue[position][3]
                position += 1
            totals[subset] = seconds
            transcripts: Dict[Path, List[str]] = {}
            for chapter, uid, text, _ in taken:
                relative = Path(str(chapter.speaker.speaker)) / str(chapter.chapter)
                _link_or_copy(chapter_dir(out, chapter) / f"{uid}.flac", root / subset / relative / f"{uid}.flac")
                transcripts.setdefault(root / subset / relative / f"{chapter.speaker.speaker}-{chapter.chapter}.trans.txt",
                                       []).append(f"{uid} {text}\n")
            for path, lines in transcripts.items():
                _atomic_write_text(path, "".join(lines))
    return totals


def _merge_alignments(out: Path) -> int:
    lines = []
    for part in ALL_PARTS:
        for path in sorted((out / "alignments" / part).glob("*.txt")):
            lines.append(path.read_text(encoding="utf-8").rstrip("\n"))
    lines.sort(key=lambda line: line.split(" ", 1)[0])
    _atomic_write_text(out / "frame_phones.txt", "\n".join(lines) + "\n")
    return len(lines)


def corpus_config(seed: int, sizes: CorpusSizes, text_sources: Sequence[str],
                  heldout_identities: Sequence[str]) -> Dict:
    return {"seed": seed, "sizes": sizes_to_dict(sizes), "text_sources": list(text_sources),
            "heldout_identities": list(heldout_identities)}


def is_complete(out: Path, config: Optional[Dict] = None) -> bool:
    marker = out / COMPLETE_MARKER
    if not marker.exists():
        return False
    return config is None or json.loads(marker.read_text())["config"] == config


def generate_corpus(out: Path, seed: int, sizes: CorpusSizes, num_jobs: int = 1,
                    text_sources: Sequence[str] = ("bible", "wordnet"),
                    heldout_identities: Sequence[str] = DEFAULT_HELDOUT_IDENTITIES,
                    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)) -> Dict:
    """Generate (or finish generating) the corpus in ``out``; return its summary (corpus_info.json)."""
    out = Path(out).resolve()
    config = corpus_config(seed, sizes, text_sources, heldout_identities)
    if is_complete(out):
        if is_complete(out, config):
            log(f"[synth] {out} is complete, nothing to do")
            return json.loads((out / "corpus_info.json").read_text())
        raise ValueError(f"{out} holds a complete corpus made with another configuration "
                         f"({out / COMPLETE_MARKER}); choose another --out or delete it")
    for voice in BASE_VOICES.values():     # every base voice serves either train or dev/test
        check_voice_installed(voice)
    start = time.time()
    pool = _load_sentence_pool(out, text_sources)
    plan = make_plan(seed, sizes, pool, heldout_identities)
    fingerprint_file = out / "plan.sha256"
    fingerprint = plan_fingerprint(plan)
    if fingerprint_file.exists() and fingerprint_file.read_text().strip() != fingerprint:
        raise ValueError(f"{out} holds a partial corpus of a different plan ({fingerprint_file}); "
                         f"delete it or choose another --out")
    _atomic_write_text(fingerprint_file, fingerprint + "\n")
    _write_transcripts_and_tables(out, plan)
    total_utterances = sum(len(chapter.utterances) for chapter in plan.chapters)
    log(f"[synth] {len(plan.chapters)} chapters, {total_utterances} utterances, "
        f"{len(plan.speakers())} speakers, {num_jobs} workers -> {out}")
    # Festival HTS chapters are the slowest: start them first so workers finish together.
    order = sorted(plan.chapters, key=lambda c: (BASE_VOICES[c.speaker.base_voice].engine != "festival", c.chapter))
    tasks = [(str(out), seed, chapter) for chapter in order]
    done_chapters, done_utterances, done_seconds = 0, 0, 0.0
    report_every = max(1, len(tasks) // 20)
    context = multiprocessing.get_context("fork")
    with context.Pool(num_jobs) if num_jobs > 1 else _InlinePool() as pool_of_workers:
        for utterances, seconds in pool_of_workers.imap_unordered(_worker, tasks):
            done_chapters += 1
            done_utterances += utterances
            done_seconds += seconds
            if done_chapters % report_every == 0 or done_chapters == len(tasks):
                elapsed = time.time() - start
                log(f"[synth] {done_chapters}/{len(tasks)} chapters, {done_utterances} new utterances, "
                    f"{done_seconds / 3600:.2f} h new audio, {elapsed:.0f} s, "
                    f"{done_seconds / max(elapsed, 1e-6):.0f} s audio per s")
    finetune_seconds = build_finetuning_tree(out, plan, seed)
    aligned = _merge_alignments(out)
    if aligned != total_utterances:
        raise RuntimeError(f"{aligned} alignments for {total_utterances} utterances in {out / 'alignments'}")
    part_seconds = {part: 0.0 for part in ALL_PARTS}
    for chapter in plan.chapters:
        part_seconds[chapter.part] += sum(_utterance_seconds(out, chapter))
    info = {"config": config, "part_seconds": part_seconds, "finetune_seconds": finetune_seconds,
            "utterances": total_utterances, "speakers": len(plan.speakers()),
            "generation_wall_seconds_last_run": round(time.time() - start, 2),
            "new_audio_seconds_last_run": round(done_seconds, 2),
            "bytes": sum(path.stat().st_size for path in (out / "LibriSpeech").rglob("*.flac"))}
    _atomic_write_text(out / "corpus_info.json", json.dumps(info, indent=2) + "\n")
    _atomic_write_text(out / COMPLETE_MARKER, json.dumps({"config": config}) + "\n")
    log(f"[synth] done: {sum(part_seconds.values()) / 3600:.2f} h in {len(ALL_PARTS)} parts, "
        f"{info['bytes'] / 1e6:.1f} MB, {time.time() - start:.0f} s")
    return info


class _InlinePool:
    """Pool stand-in for --nj 1 (no fork: simpler tracebacks)."""

    def __enter__(self) -> "_InlinePool":
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def imap_unordered(function, items):
        return map(function, items)
