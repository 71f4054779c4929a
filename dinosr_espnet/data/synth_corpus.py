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
import dataclasses
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
from dinosr_espnet.data.audio_effects import add_noise, add_reverb, room_impulse_response, set_peak, sox_warp
from dinosr_espnet.data.phones import frame_labels
from dinosr_espnet.data.synth_plan import (ALL_PARTS, CONDITION_A_PARTS, CONDITION_B_PARTS,
                                           DEFAULT_HELDOUT_IDENTITIES, DEFAULT_LABELED_IDENTITIES,
                                           LABELED_SOURCE_PARTS, ChapterPlan, CorpusPlan, CorpusSizes, SpeakerPlan,
                                           make_plan, plan_fingerprint, sizes_to_dict, voice_roles)
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
    voice = BASE_VOICES[speaker.base_voice]
    if voice.engine == "mbrola":
        # Always the whole chapter: espeak-ng's intonation depends a little on the neighbouring
        # sentences, so a resumed chapter must be synthesized as one batch as before.
        wanted = {uid for uid, _ in missing}
        results = synthesize_batch(voice, [text for _, text in chapter.utterances], speaker.duration_stretch,
                                   2 ** (speaker.pitch_cents / 1200), speaker.vocal_tract)
        results = [result for (uid, _), result in zip(chapter.utterances, results) if uid in wanted]
    else:
        results = synthesize_batch(voice, [text for _, text in missing], speaker.duration_stretch)
    room = None
    if speaker.reverb_seconds > 0:
        room = room_impulse_response(speaker.reverb_seconds,
                                     np.random.default_rng(_utterance_seed(seed, f"room-{speaker.speaker}")))
    seconds = 0.0
    for (uid, _), (audio, (phones, ends)) in zip(missing, results):
        if voice.engine != "mbrola":       # mbrola warped F0 and formants itself
            audio = sox_warp(audio, speaker.speed, speaker.pitch_cents)
            ends = [end / speaker.speed for end in ends]     # sox speed shortens time by 1/speed
        if room is not None:
            audio = add_reverb(audio, room)
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
    columns = [f.name for f in dataclasses.fields(SpeakerPlan)]
    rows = ["\t".join(columns)]
    rows += ["\t".join(str(getattr(speaker, column)) for column in columns) for speaker in plan.speakers()]
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

    Only speakers of the labeled voices (``SpeakerPlan.labeled``) are used. Each half of a 1h fold
    takes whole utterances in speaker-major order until it holds ``finetune_fold / 2`` seconds; 9h
    takes the next utterances until ``finetune_9h / 2``. Returns seconds per subset (``1h/0/clean`` ...).
    """
    root = out / "librispeech_finetuning"
    if root.exists():
        shutil.rmtree(root)
    sizes = plan.sizes
    totals: Dict[str, float] = {}
    for condition, part in zip(("clean", "other"), LABELED_SOURCE_PARTS):
        by_speaker: Dict[int, List[Tuple[ChapterPlan, str, str, float]]] = {}
        for chapter in plan.chapters:
            if chapter.part == part and chapter.speaker.labeled:
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
                    raise ValueError(f"the labeled speakers of {part} are too short for the fine-tuning subset "
                                     f"{subset}; raise its size")
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


CORPUS_VERSION = 2     # 2: unlabeled >> labeled, voice roles, mbrola/festival voices, reverberation


def corpus_config(seed: int, sizes: CorpusSizes, text_sources: Sequence[str],
                  heldout_identities: Sequence[str],
                  labeled_identities: Sequence[str] = DEFAULT_LABELED_IDENTITIES) -> Dict:
    return {"version": CORPUS_VERSION, "seed": seed, "sizes": sizes_to_dict(sizes),
            "text_sources": list(text_sources), "heldout_identities": list(heldout_identities),
            "labeled_identities": list(labeled_identities)}


def corpus_summary(plan: CorpusPlan, part_seconds: Dict[str, float]) -> Dict:
    """Voice roles, the test conditions and speaker counts (for corpus_info.json and the README)."""
    speakers_per_part = {part: sorted({c.speaker.speaker for c in plan.chapters if c.part == part})
                         for part in ALL_PARTS}
    voices_per_part = {part: sorted({c.speaker.base_voice for c in plan.chapters if c.part == part})
                       for part in ALL_PARTS}
    return {"roles": dataclasses.asdict(plan.roles),
            "conditions": {"a_voices_heard_unlabeled_only": list(CONDITION_A_PARTS),
                           "b_voice_heard_nowhere": list(CONDITION_B_PARTS)},
            "speakers_per_part": {part: len(ids) for part, ids in speakers_per_part.items()},
            "voices_per_part": voices_per_part,
            "unlabeled_speakers": len({s for part in ALL_PARTS if part.startswith("train") for s in speakers_per_part[part]}),
            "labeled_eligible_speakers": sum(1 for s in plan.speakers() if s.labeled),
            "hours_per_part": {part: round(seconds / 3600, 3) for part, seconds in part_seconds.items()}}


def is_complete(out: Path, config: Optional[Dict] = None) -> bool:
    marker = out / COMPLETE_MARKER
    if not marker.exists():
        return False
    return config is None or json.loads(marker.read_text())["config"] == config


def generate_corpus(out: Path, seed: int, sizes: CorpusSizes, num_jobs: int = 1,
                    text_sources: Sequence[str] = ("bible", "wordnet"),
                    heldout_identities: Sequence[str] = DEFAULT_HELDOUT_IDENTITIES,
                    labeled_identities: Sequence[str] = DEFAULT_LABELED_IDENTITIES,
                    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)) -> Dict:
    """Generate (or finish generating) the corpus in ``out``; return its summary (corpus_info.json)."""
    out = Path(out).resolve()
    config = corpus_config(seed, sizes, text_sources, heldout_identities, labeled_identities)
    roles = voice_roles(labeled_identities, heldout_identities)
    if is_complete(out):
        if is_complete(out, config):
            log(f"[synth] {out} is complete, nothing to do")
            return json.loads((out / "corpus_info.json").read_text())
        raise ValueError(f"{out} holds a complete corpus made with another configuration "
                         f"({out / COMPLETE_MARKER}); choose another --out or delete it")
    for name in roles.training + roles.heldout:
        check_voice_installed(BASE_VOICES[name])
    start = time.time()
    pool = _load_sentence_pool(out, text_sources)
    plan = make_plan(seed, sizes, pool, roles)
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
    # The slowest chapters (festival, flite's cg voices) first, so that the workers finish together.
    order = sorted(plan.chapters, key=lambda c: (BASE_VOICES[c.speaker.base_voice].engine == "mbrola",
                                                 c.speaker.base_voice == "flite_kal16",
                                                 BASE_VOICES[c.speaker.base_voice].engine != "festival", c.chapter))
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
            **corpus_summary(plan, part_seconds),
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
