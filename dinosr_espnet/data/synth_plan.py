"""The plan of the synthetic LibriSpeech-format corpus: who says what, in which part.

Everything here is a pure function of (seed, sizes, sentence pool), so one seed gives the same
speakers, warps and transcripts on every machine. Generation (synth_corpus.py) only executes it.

Splits mirror the paper's setting: the three ``train-*`` parts are the unlabeled pre-training
set; the Libri-light style fine-tuning tree is later cut out of train-clean-100 (clean) and
train-other-500 (other), as the real one is cut out of LibriSpeech; dev/test speakers are built
from base voices whose recorded person (identity) never occurs in any train part. ``other``
parts get stronger speed/pitch warps and additive noise.
"""
import hashlib
import random
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

from dinosr_espnet.data.tts import BASE_VOICES

TRAIN_PARTS = ("train-clean-100", "train-clean-360", "train-other-500")
EVAL_PARTS = ("dev-clean", "dev-other", "test-clean", "test-other")
ALL_PARTS = TRAIN_PARTS + EVAL_PARTS
DEFAULT_HELDOUT_IDENTITIES = ("rms",)


@dataclass(frozen=True)
class CorpusSizes:
    """Target audio durations in seconds (the plan estimates durations from text length, so
    generated parts land within roughly +-20 % of these)."""
    train_clean_100: float = 1.2 * 3600
    train_clean_360: float = 0.6 * 3600
    train_other_500: float = 1.2 * 3600
    eval_part: float = 600.0              # each of dev-clean, dev-other, test-clean, test-other
    finetune_fold: float = 600.0          # each of the six 1h/<k> folds (half clean, half other)
    finetune_9h: float = 3600.0           # the (scaled-down) 9h part (half clean, half other)
    train_speaker: float = 150.0          # audio per pseudo-speaker in train parts
    eval_speaker: float = 60.0            # audio per pseudo-speaker in dev/test parts
    utterances_per_chapter: int = 12

    @classmethod
    def tiny(cls) -> "CorpusSizes":
        return cls(train_clean_100=60, train_clean_360=25, train_other_500=60, eval_part=15,
                   finetune_fold=8, finetune_9h=16, train_speaker=15, eval_speaker=8,
                   utterances_per_chapter=3)

    def part_seconds(self, part: str) -> float:
        if part in EVAL_PARTS:
            return self.eval_part
        return getattr(self, part.replace("-", "_"))

    def check(self) -> None:
        """The fine-tuning tree is cut from train-clean-100 / train-other-500, so they must hold it."""
        needed = 3 * self.finetune_fold + self.finetune_9h / 2
        for part in ("train_clean_100", "train_other_500"):
            if getattr(self, part) < 1.15 * needed:
                raise ValueError(f"{part} = {getattr(self, part):.0f} s cannot hold the fine-tuning tree's "
                                 f"{needed:.0f} s of its condition (+15 % margin); raise it or shrink the folds")


@dataclass(frozen=True)
class SpeakerPlan:
    speaker: int
    part: str
    base_voice: str
    identity: str
    duration_stretch: float
    speed: float
    pitch_cents: float
    snr_db: float          # 0 = no added noise
    peak: float


@dataclass(frozen=True)
class ChapterPlan:
    speaker: SpeakerPlan
    chapter: int
    utterances: Tuple[Tuple[str, str], ...]     # (utterance id, transcript)

    @property
    def part(self) -> str:
        return self.speaker.part


@dataclass
class CorpusPlan:
    chapters: List[ChapterPlan]
    lm_sentences: List[str]
    heldout_identities: Tuple[str, ...]
    sizes: CorpusSizes = field(default_factory=CorpusSizes)

    def speakers(self) -> List[SpeakerPlan]:
        unique = {chapter.speaker.speaker: chapter.speaker for chapter in self.chapters}
        return [unique[key] for key in sorted(unique)]


def estimated_seconds(text: str, stretch: float, speed: float) -> float:
    """Rough synthesized length: ~18 characters per second plus edge silences (measured over
    the six base voices on a 700 s corpus)."""
    return (0.34 + 0.055 * len(text)) * stretch / speed


# festival's HTS voice is ~5x slower than the others: it gets half as many speakers.
_HALF_WEIGHT_VOICES = ("fest_slt_hts",)


def _voices_for(part: str, heldout_identities: Sequence[str]) -> List[str]:
    """The cycle of base voices that speakers of ``part`` take in turn."""
    heldout = part in EVAL_PARTS
    voices = [name for name, voice in BASE_VOICES.items() if (voice.identity in heldout_identities) == heldout]
    if not voices:
        raise ValueError(f"no base voice left for {part} with held-out identities {list(heldout_identities)}")
    second_round = [name for name in voices if name not in _HALF_WEIGHT_VOICES]
    return voices + second_round if second_round else voices


def _warp(rng: random.Random, other: bool) -> Tuple[float, float, float, float]:
    """(duration_stretch, speed, pitch_cents, snr_db) for a new pseudo-speaker."""
    if other:
        speed = rng.choice((-1, 1)) * rng.uniform(0.06, 0.14) + 1.0
        return rng.uniform(0.85, 1.3), speed, rng.uniform(-400, 400), rng.uniform(8, 22)
    return rng.uniform(0.9, 1.15), rng.uniform(0.95, 1.05), rng.uniform(-200, 200), 0.0


def make_plan(seed: int, sizes: CorpusSizes, sentence_pool: Sequence[str],
              heldout_identities: Sequence[str] = DEFAULT_HELDOUT_IDENTITIES) -> CorpusPlan:
    """Assign pseudo-speakers, chapters and sentences to every part; the rest of the pool is LM text.

    Dev/test sentences are drawn first and removed from the LM text, so the LM never sees them.
    """
    sizes.check()
    rng = random.Random(seed)
    sentences = list(sentence_pool)
    rng.shuffle(sentences)
    cursor = 0
    speaker_id, chapter_id = 100, 1000
    chapters: List[ChapterPlan] = []
    eval_sentences = set()
    for part in EVAL_PARTS + TRAIN_PARTS:   # eval first: their sentences come off the top
        voices = _voices_for(part, heldout_identities)
        speaker_seconds = sizes.eval_speaker if part in EVAL_PARTS else sizes.train_speaker
        num_speakers = max(2 if part in EVAL_PARTS else 4, round(sizes.part_seconds(part) / speaker_seconds))
        per_speaker = sizes.part_seconds(part) / num_speakers
        for index in range(num_speakers):
            stretch, speed, pitch, snr = _warp(rng, "other" in part)
            voice = voices[index % len(voices)]    # every allowed voice in turn
            speaker = SpeakerPlan(speaker_id, part, voice, BASE_VOICES[voice].identity, round(stretch, 4),
                                  round(speed, 4), round(pitch, 1), round(snr, 1), round(rng.uniform(0.3, 0.9), 3))
            speaker_id += 1
            spoken, utterances = 0.0, []
            while spoken < per_speaker:
                if cursor >= len(sentences):
                    raise ValueError(f"sentence pool exhausted ({len(sentences)} sentences) while planning {part}")
                text = sentences[cursor]
                cursor += 1
                if part in EVAL_PARTS:
                    eval_sentences.add(text)
                utterances.append(text)
                spoken += estimated_seconds(text, stretch, speed)
            for start in range(0, len(utterances), sizes.utterances_per_chapter):
                group = utterances[start:start + sizes.utterances_per_chapter]
                ids = tuple((f"{speaker.speaker}-{chapter_id}-{number:04d}", text) for number, text in enumerate(group))
                chapters.append(ChapterPlan(speaker, chapter_id, ids))
                chapter_id += 1
    lm_sentences = [text for text in sentences if text not in eval_sentences]
    return CorpusPlan(chapters, lm_sentences, tuple(heldout_identities), sizes)


def sizes_to_dict(sizes: CorpusSizes) -> Dict[str, float]:
    return asdict(sizes)


def plan_fingerprint(plan: CorpusPlan) -> str:
    """SHA-256 of everything the audio depends on (speakers, warps, ids, transcripts)."""
    digest = hashlib.sha256()
    for chapter in plan.chapters:
        digest.update(repr((asdict(chapter.speaker), chapter.chapter, chapter.utterances)).encode())
    return digest.hexdigest()
