"""The plan of the synthetic LibriSpeech-format corpus: who says what, in which part.

Everything here is a pure function of (seed, sizes, sentence pool, voice roles), so one seed gives
the same speakers, warps and transcripts on every machine. Generation (synth_corpus.py) only
executes it.

The paper's regime, scaled down: the three ``train-*`` parts are the unlabeled pre-training set
(20 h at demo size, >= 20x the 1 h labeled split), spoken by a few hundred pseudo-speakers of every
training voice. The Libri-light style fine-tuning tree is cut out of train-clean-100 (clean half)
and train-other-500 (other half), as the real one is cut out of LibriSpeech, but only from speakers
of the *labeled* voices, a subset of the training voices. Every base voice has one role, by the
person it was recorded from (its identity):

* labeled: in the unlabeled set and in the labeled splits (train_10m, train_1h, train_10h);
* unlabeled-only: in the unlabeled set but never in a labeled split. dev-clean / test-clean are new
  pseudo-speakers of these voices: **condition (a)**, voices heard in pre-training only;
* held out: nowhere in training. dev-other / test-other are pseudo-speakers of these voices:
  **condition (b)**, a voice heard nowhere in training.

Here ``clean`` / ``other`` in the dev/test names say the condition, not the noise level: both
conditions have the same mix of mild warps and strong ones (noise, reverberation, larger speed and
pitch changes), half of the speakers each, so that they differ only in how familiar the voice is.
In the train parts, ``other`` has the strong warps as in LibriSpeech.
"""
import hashlib
import random
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

from dinosr_espnet.data.tts import BASE_VOICES, is_reserved

TRAIN_PARTS = ("train-clean-100", "train-clean-360", "train-other-500")
EVAL_PARTS = ("dev-clean", "dev-other", "test-clean", "test-other")
ALL_PARTS = TRAIN_PARTS + EVAL_PARTS
CONDITION_A_PARTS = ("dev-clean", "test-clean")     # voices heard in the unlabeled set only
CONDITION_B_PARTS = ("dev-other", "test-other")     # a voice heard nowhere in training
LABELED_SOURCE_PARTS = ("train-clean-100", "train-other-500")   # the fine-tuning tree is cut from these
DEFAULT_HELDOUT_IDENTITIES = ("rms",)
DEFAULT_LABELED_IDENTITIES = ("kal", "slt", "us2", "awb")
# Labeled-voice audio planned in each LABELED_SOURCE_PART: what the tree takes from it times
# LABELED_MARGIN plus two speakers' worth (the plan estimates durations from text, and the tree
# takes whole utterances).
LABELED_MARGIN = 1.25

# Share of the audio per base voice, relative, chosen by synthesis cost. Audio seconds per CPU
# second through the whole pipeline (synthesis, warps, FLAC), measured on chapters of the demo plan
# on the shared 2-core machine: mbrola ~160, flite kal16 ~70, festival diphones ~36, flite cg
# (awb, slt) ~28, flite rms ~20, festival HTS ~12. So mbrola carries most of the unlabeled audio
# (the demo corpus then costs ~1,060 CPU-s of synthesis, ~9 min on 2 cores) and every voice still gets several
# pseudo-speakers. The labeled splits are small: their voices are more even (HTS still lighter).
UNLABELED_VOICE_WEIGHTS = {"mbrola_us1": 6.0, "mbrola_us2": 6.0, "flite_kal16": 1.5, "fest_kal": 0.5,
                           "fest_ked": 1.0, "fest_rab": 1.0, "flite_awb": 0.3, "flite_slt": 0.3,
                           "fest_slt_hts": 0.15, "flite_rms": 0.5}
LABELED_VOICE_WEIGHTS = {"mbrola_us2": 1.5, "flite_kal16": 1.0, "fest_kal": 1.0, "flite_awb": 0.5,
                         "flite_slt": 0.5, "fest_slt_hts": 0.2}


@dataclass(frozen=True)
class CorpusSizes:
    """Target audio durations in seconds (the plan estimates durations from text length, so
    generated parts land within roughly +-20 % of these)."""
    train_clean_100: float = 8.0 * 3600
    train_clean_360: float = 4.0 * 3600
    train_other_500: float = 8.0 * 3600
    eval_part: float = 600.0              # each of dev-clean, dev-other, test-clean, test-other
    finetune_fold: float = 600.0          # each of the six 1h/<k> folds (half clean, half other)
    finetune_9h: float = 3600.0           # the (scaled-down) 9h part (half clean, half other)
    train_speaker: float = 300.0          # audio per pseudo-speaker in train parts
    eval_speaker: float = 60.0            # audio per pseudo-speaker in dev/test parts
    utterances_per_chapter: int = 12

    @classmethod
    def tiny(cls) -> "CorpusSizes":
        return cls(train_clean_100=80, train_clean_360=40, train_other_500=80, eval_part=15,
                   finetune_fold=8, finetune_9h=16, train_speaker=8, eval_speaker=8,
                   utterances_per_chapter=3)

    def unlabeled_seconds(self) -> float:
        return self.train_clean_100 + self.train_clean_360 + self.train_other_500

    def labeled_seconds_per_source_part(self) -> float:
        """What the fine-tuning tree takes from each of train-clean-100 and train-other-500."""
        return 3 * self.finetune_fold + self.finetune_9h / 2

    def labeled_seconds_planned_per_source_part(self) -> float:
        return LABELED_MARGIN * self.labeled_seconds_per_source_part() + 2 * self.train_speaker

    def part_seconds(self, part: str) -> float:
        if part in EVAL_PARTS:
            return self.eval_part
        return getattr(self, part.replace("-", "_"))

    def check(self) -> None:
        """The fine-tuning tree is cut from train-clean-100 / train-other-500, so they must hold it."""
        needed = self.labeled_seconds_planned_per_source_part()
        for part in ("train_clean_100", "train_other_500"):
            if getattr(self, part) < needed:
                raise ValueError(f"{part} = {getattr(self, part):.0f} s cannot hold the fine-tuning tree's "
                                 f"{self.labeled_seconds_per_source_part():.0f} s of its condition "
                                 f"({needed:.0f} s with the margin); raise it or shrink the folds")


@dataclass(frozen=True)
class SpeakerPlan:
    speaker: int
    part: str
    base_voice: str
    identity: str
    labeled: bool          # the fine-tuning tree may take this speaker's utterances
    duration_stretch: float
    speed: float           # sox speed (resampling: tempo, F0 and formants together); 1 for mbrola
    pitch_cents: float     # F0 shift: mbrola -f, else sox pitch
    vocal_tract: float     # mbrola -l ratio (formant warp); 1 for the other engines
    snr_db: float          # 0 = no added noise
    reverb_seconds: float  # RT60 of a synthetic room; 0 = dry
    peak: float


@dataclass(frozen=True)
class ChapterPlan:
    speaker: SpeakerPlan
    chapter: int
    utterances: Tuple[Tuple[str, str], ...]     # (utterance id, transcript)

    @property
    def part(self) -> str:
        return self.speaker.part


@dataclass(frozen=True)
class VoiceRoles:
    """Base voice names by role (see the module docstring)."""
    labeled: Tuple[str, ...]
    unlabeled_only: Tuple[str, ...]
    heldout: Tuple[str, ...]

    @property
    def training(self) -> Tuple[str, ...]:
        return self.labeled + self.unlabeled_only


def voice_roles(labeled_identities: Sequence[str] = DEFAULT_LABELED_IDENTITIES,
                heldout_identities: Sequence[str] = DEFAULT_HELDOUT_IDENTITIES) -> VoiceRoles:
    """Split BASE_VOICES by identity; every role must keep at least one voice."""
    identities = {voice.identity for voice in BASE_VOICES.values()}
    for name, chosen in (("labeled", labeled_identities), ("held-out", heldout_identities)):
        unknown = sorted(set(chosen) - identities)
        if unknown:
            raise ValueError(f"unknown {name} identities {unknown}; choose from {sorted(identities)}")
    both = sorted(set(labeled_identities) & set(heldout_identities))
    if both:
        raise ValueError(f"identities {both} cannot be both labeled and held out")
    roles = VoiceRoles(
        labeled=tuple(n for n, v in BASE_VOICES.items() if v.identity in labeled_identities),
        unlabeled_only=tuple(n for n, v in BASE_VOICES.items()
                             if v.identity not in labeled_identities and v.identity not in heldout_identities),
        heldout=tuple(n for n, v in BASE_VOICES.items() if v.identity in heldout_identities))
    for role in ("labeled", "unlabeled_only", "heldout"):
        if not getattr(roles, role):
            raise ValueError(f"no base voice left for the {role} role (labeled {list(labeled_identities)}, "
                             f"held out {list(heldout_identities)})")
    reserved = [name for name in roles.training + roles.heldout if is_reserved(name)]
    if reserved:
        raise ValueError(f"reserved voices {reserved} must not be used")
    return roles


@dataclass
class CorpusPlan:
    chapters: List[ChapterPlan]
    lm_sentences: List[str]
    roles: VoiceRoles
    sizes: CorpusSizes = field(default_factory=CorpusSizes)

    def speakers(self) -> List[SpeakerPlan]:
        unique = {chapter.speaker.speaker: chapter.speaker for chapter in self.chapters}
        return [unique[key] for key in sorted(unique)]


# Measured length / estimate per base voice (tiny corpus, seed 3); others ~1.
_LENGTH_FACTOR = {"mbrola_us1": 0.86, "mbrola_us2": 0.86, "flite_kal16": 0.86, "flite_rms": 1.15}


def estimated_seconds(text: str, stretch: float, speed: float, base_voice: str = "") -> float:
    """Rough synthesized length: ~18 characters per second plus edge silences (measured over
    the base voices on a 700 s corpus), times the voice's own rate."""
    return (0.34 + 0.055 * len(text)) * stretch / speed * _LENGTH_FACTOR.get(base_voice, 1.0)


class _WeightedCycle:
    """Deterministic smooth weighted round robin: every voice once first, then in proportion to weight."""

    def __init__(self, voices: Sequence[str], weights: Dict[str, float]):
        self.voices = list(voices)
        self.weights = [weights.get(voice, 1.0) for voice in self.voices]
        self.credit = [0.0] * len(self.voices)
        self.first_round = list(self.voices)

    def next(self) -> str:
        total = sum(self.weights)
        for index, weight in enumerate(self.weights):
            self.credit[index] += weight
        if self.first_round:
            voice = self.first_round.pop(0)
            index = self.voices.index(voice)
        else:
            index = max(range(len(self.voices)), key=lambda i: (self.credit[i], -i))
            voice = self.voices[index]
        self.credit[index] -= total
        return voice


def _warp(rng: random.Random, strong: bool, engine: str) -> Dict[str, float]:
    """Warps of a new pseudo-speaker; ``strong`` for the ``other`` style (noise, room, larger shifts).

    mbrola warps natively (exact alignments, no resampling): ``-l`` for the vocal tract, ``-f`` for
    F0. flite and festival get a sox speed change (tempo, F0 and formants; the duration stretch
    compensates part of the tempo) and a sox pitch shift.
    """
    duration_stretch = rng.uniform(0.85, 1.3) if strong else rng.uniform(0.9, 1.15)
    pitch_cents = rng.uniform(-400, 400) if strong else rng.uniform(-200, 200)
    if engine == "mbrola":
        speed, vocal_tract = 1.0, (rng.uniform(0.85, 1.18) if strong else rng.uniform(0.9, 1.12))
    else:
        speed = 1.0 + (rng.choice((-1, 1)) * rng.uniform(0.06, 0.14) if strong else rng.uniform(-0.05, 0.05))
        vocal_tract = 1.0
    snr_db = rng.uniform(8, 22) if strong else 0.0
    reverb_seconds = rng.uniform(0.2, 0.7) if strong and rng.random() < 0.6 else 0.0
    return {"duration_stretch": round(duration_stretch, 4), "speed": round(speed, 4),
            "pitch_cents": round(pitch_cents, 1), "vocal_tract": round(vocal_tract, 4),
            "snr_db": round(snr_db, 1), "reverb_seconds": round(reverb_seconds, 3),
            "peak": round(rng.uniform(0.3, 0.9), 3)}


def _speaker_slots(part: str, sizes: CorpusSizes, roles: VoiceRoles, cycles: Dict[str, _WeightedCycle]
                   ) -> List[Tuple[str, bool, float]]:
    """(base voice, labeled, planned seconds) for each speaker of ``part``."""
    if part in EVAL_PARTS:
        groups = [("heldout" if part in CONDITION_B_PARTS else "condition_a", False, sizes.part_seconds(part))]
        per_speaker, minimum = sizes.eval_speaker, 2
    else:
        labeled = sizes.labeled_seconds_planned_per_source_part() if part in LABELED_SOURCE_PARTS else 0.0
        groups = [("labeled", True, labeled), ("unlabeled", False, sizes.part_seconds(part) - labeled)]
        per_speaker, minimum = sizes.train_speaker, 1
    slots = []
    for cycle, labeled, seconds in groups:
        if seconds <= 0:
            continue
        count = max(minimum, round(seconds / per_speaker))
        slots += [(cycles[cycle].next(), labeled, seconds / count) for _ in range(count)]
    return slots


def make_plan(seed: int, sizes: CorpusSizes, sentence_pool: Sequence[str],
              roles: VoiceRoles = None) -> CorpusPlan:
    """Assign pseudo-speakers, chapters and sentences to every part; the rest of the pool is LM text.

    Dev/test sentences are drawn first and removed from the LM text, so the LM never sees them.
    """
    sizes.check()
    roles = roles or voice_roles()
    rng = random.Random(seed)
    sentences = list(sentence_pool)
    rng.shuffle(sentences)
    cycles = {"labeled": _WeightedCycle(roles.labeled, LABELED_VOICE_WEIGHTS),
              "unlabeled": _WeightedCycle(roles.training, UNLABELED_VOICE_WEIGHTS),
              "condition_a": _WeightedCycle(roles.unlabeled_only, {}),
              "heldout": _WeightedCycle(roles.heldout, {})}
    cursor = 0
    speaker_id, chapter_id = 100, 1000
    chapters: List[ChapterPlan] = []
    eval_sentences = set()
    for part in EVAL_PARTS + TRAIN_PARTS:   # eval first: their sentences come off the top
        for index, (voice, labeled, per_speaker) in enumerate(_speaker_slots(part, sizes, roles, cycles)):
            # dev/test: mild and strong warps alternate, the same mix in both conditions
            strong = index % 2 == 1 if part in EVAL_PARTS else "other" in part
            warp = _warp(rng, strong, BASE_VOICES[voice].engine)
            speaker = SpeakerPlan(speaker_id, part, voice, BASE_VOICES[voice].identity, labeled, **warp)
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
                spoken += estimated_seconds(text, speaker.duration_stretch, speaker.speed, voice)
            for start in range(0, len(utterances), sizes.utterances_per_chapter):
                group = utterances[start:start + sizes.utterances_per_chapter]
                ids = tuple((f"{speaker.speaker}-{chapter_id}-{number:04d}", text) for number, text in enumerate(group))
                chapters.append(ChapterPlan(speaker, chapter_id, ids))
                chapter_id += 1
    heard = {c.speaker.base_voice for c in chapters if c.part in TRAIN_PARTS and not c.speaker.labeled}
    unheard = [voice for voice in roles.training if voice not in heard]
    if unheard:
        raise ValueError(f"the unlabeled parts are too small to give every training voice a speaker "
                         f"(missing {unheard}); raise their sizes or lower train_speaker")
    lm_sentences = [text for text in sentences if text not in eval_sentences]
    return CorpusPlan(chapters, lm_sentences, roles, sizes)


def sizes_to_dict(sizes: CorpusSizes) -> Dict[str, float]:
    return asdict(sizes)


def plan_fingerprint(plan: CorpusPlan) -> str:
    """SHA-256 of everything the audio depends on (speakers, warps, ids, transcripts)."""
    digest = hashlib.sha256()
    for chapter in plan.chapters:
        digest.update(repr((asdict(chapter.speaker), chapter.chapter, chapter.utterances)).encode())
    return digest.hexdigest()
