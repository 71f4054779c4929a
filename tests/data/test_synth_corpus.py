"""The synthetic corpus, prepared with the LibriSpeech preparation code: layout, split sizes,
voice roles and the two test conditions, alignments, determinism and resumability; and the
demo-size plan's regime (unlabeled >= 20x the 1 h split, many more speakers than any labeled split)."""
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import soundfile

from conftest import REPO_ROOT, run_module
from dinosr_espnet.data.kaldi_data import validate_data_dir
from dinosr_espnet.data.librispeech import DATA_SETS
from dinosr_espnet.data.phones import PHONE_SET, num_frames
from dinosr_espnet.data.synth_plan import (CONDITION_A_PARTS, CONDITION_B_PARTS, EVAL_PARTS, TRAIN_PARTS,
                                           CorpusSizes, estimated_seconds, make_plan, plan_fingerprint)
from dinosr_espnet.data.tts import BASE_VOICES

SEED = 3
SIZES = CorpusSizes.tiny()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    run_module("dinosr_espnet.bin.make_synth_corpus", "--out", str(out), "--seed", str(SEED), "--tiny", "--nj", "2")
    return out


@pytest.fixture(scope="module")
def datadir(corpus, tmp_path_factory) -> Path:
    """Prepared by the synth recipe's local/data.sh, i.e. the same code as LibriSpeech."""
    data = tmp_path_factory.mktemp("recipe") / "data"
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", str(REPO_ROOT / ".venv/bin/python")),
           "OMP_NUM_THREADS": "1"}
    subprocess.run([str(REPO_ROOT / "egs/synth/dinosr1/local/data.sh"), "--datadir", str(data),
                    "--corpus_dir", str(corpus), "--seed", str(SEED), "--tiny", "true", "--nj", "2"],
                   check=True, env=env, capture_output=True, text=True, timeout=300)
    return data


def _table(path: Path) -> dict:
    return dict(line.rstrip("\n").split(" ", 1) for line in path.open() if line.strip())


def _seconds(directory: Path) -> float:
    return sum(int(value) for value in _table(directory / "utt2num_samples").values()) / 16000


def _speaker_voices(corpus: Path) -> dict:
    rows = [line.rstrip("\n").split("\t") for line in (corpus / "speakers.tsv").open()][1:]
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_corpus_has_librispeech_layout(corpus):
    for part in TRAIN_PARTS + EVAL_PARTS:
        transcripts = list((corpus / "LibriSpeech" / part).glob("*/*/*.trans.txt"))
        assert transcripts, part
        first = transcripts[0]
        uid, text = first.read_text().splitlines()[0].split(" ", 1)
        assert uid.startswith(first.name.replace(".trans.txt", "-")) and text == text.upper()
        info = soundfile.info(str(first.parent / f"{uid}.flac"))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    for fold in range(6):
        for condition in ("clean", "other"):
            assert list((corpus / "librispeech_finetuning" / f"1h/{fold}/{condition}").glob("*/*/*.flac"))
    assert list((corpus / "librispeech_finetuning" / "9h/other").glob("*/*/*.trans.txt"))
    assert (corpus / ".complete").exists()


def test_every_data_dir_is_prepared_and_valid(datadir):
    for name in DATA_SETS:
        assert validate_data_dir(datadir / name) > 0, name
        assert (datadir / name / "frame_phones").exists()
    lm_lines = (datadir / "local/lm/lm_text.txt").read_text().splitlines()
    assert len(lm_lines) > 1000


def test_split_sizes_follow_the_requested_seconds(datadir):
    fold = SIZES.finetune_fold
    assert fold * 0.9 <= _seconds(datadir / "train_10m") <= fold + 20       # whole utterances overshoot a little
    assert 6 * fold * 0.9 <= _seconds(datadir / "train_1h") <= 6 * fold + 6 * 20
    expected_10h = 6 * fold + SIZES.finetune_9h
    assert expected_10h * 0.9 <= _seconds(datadir / "train_10h") <= expected_10h + 8 * 20
    unlabeled = SIZES.train_clean_100 + SIZES.train_clean_360 + SIZES.train_other_500
    assert 0.7 * unlabeled <= _seconds(datadir / "train_960") <= 1.4 * unlabeled
    for name in ("dev_clean", "dev_other", "test_clean", "test_other"):
        assert 0.6 * SIZES.eval_part <= _seconds(datadir / name) <= 1.8 * SIZES.eval_part, name
    assert _seconds(datadir / "train_10m") < _seconds(datadir / "train_1h") < _seconds(datadir / "train_10h")


def test_finetuning_sets_are_nested_subsets_of_the_unlabeled_set(datadir):
    ten_minutes, one_hour, ten_hours = (set(_table(datadir / name / "text")) for name in ("train_10m", "train_1h", "train_10h"))
    assert ten_minutes < one_hour < ten_hours <= set(_table(datadir / "train_960" / "text"))


def _identities(voices: dict, datadir: Path, name: str) -> set:
    return {voices[speaker][2] for speaker in set(_table(datadir / name / "utt2spk").values())}


def test_dev_and_test_speakers_never_occur_in_training(datadir):
    train_speakers = set(_table(datadir / "train_960" / "utt2spk").values())
    for name in ("dev_clean", "dev_other", "test_clean", "test_other"):
        assert not set(_table(datadir / name / "utt2spk").values()) & train_speakers, name


def test_labeled_splits_use_a_proper_subset_of_the_unlabeled_voices(corpus, datadir):
    voices = _speaker_voices(corpus)
    unlabeled = _identities(voices, datadir, "train_960")
    for name in ("train_10m", "train_1h", "train_10h"):
        assert _identities(voices, datadir, name) < unlabeled, name
    labeled_speakers = set(_table(datadir / "train_10h" / "utt2spk").values())
    assert len(set(_table(datadir / "train_960" / "utt2spk").values())) > 2 * len(labeled_speakers)


def test_condition_a_voices_are_heard_in_the_unlabeled_set_but_not_in_a_labeled_split(corpus, datadir):
    """dev_clean / test_clean: every identity occurs in train_960 and in no labeled split."""
    voices = _speaker_voices(corpus)
    labeled = _identities(voices, datadir, "train_10h")       # train_10m < train_1h < train_10h
    unlabeled = _identities(voices, datadir, "train_960")
    for name in ("dev_clean", "test_clean"):
        condition_a = _identities(voices, datadir, name)
        assert condition_a and condition_a <= unlabeled and not condition_a & labeled, name


def test_condition_b_voice_is_heard_nowhere_in_training(corpus, datadir):
    """dev_other / test_other: no identity occurs in train_960 (which holds every labeled split)."""
    voices = _speaker_voices(corpus)
    training = _identities(voices, datadir, "train_960") | _identities(voices, datadir, "train_10h")
    for name in ("dev_other", "test_other"):
        condition_b = _identities(voices, datadir, name)
        assert condition_b and not condition_b & training, name


def test_lm_text_excludes_dev_and_test_sentences(datadir):
    lm_sentences = set((datadir / "local/lm/lm_text.txt").read_text().splitlines())
    for name in ("dev_clean", "dev_other", "test_clean", "test_other"):
        assert not set(_table(datadir / name / "text").values()) & lm_sentences


def test_frame_phones_have_one_label_per_20ms_frame(datadir):
    samples = _table(datadir / "train_960" / "utt2num_samples")
    phones = _table(datadir / "train_960" / "frame_phones")
    assert phones.keys() == samples.keys()
    speech_frames = 0
    for uid, labels in phones.items():
        labels = labels.split()
        assert len(labels) == (int(samples[uid]) - 400) // 320 + 1 == num_frames(int(samples[uid]))
        assert set(labels) <= PHONE_SET
        speech_frames += sum(label != "sil" for label in labels)
    assert speech_frames > 0.5 * sum(len(labels.split()) for labels in phones.values())


def _audio_digests(corpus: Path) -> dict:
    return {path.name: hashlib.sha256(soundfile.read(str(path), dtype="int16")[0].tobytes()).hexdigest()
            for path in sorted((corpus / "LibriSpeech").rglob("*.flac"))}


def test_same_seed_gives_identical_corpus_and_rerun_is_skipped(corpus, tmp_path):
    # A second corpus with the same seed, built through an interrupted run (resume path):
    # the first run only gets its plan written, then some audio is removed before resuming.
    second = tmp_path / "again"
    run_module("dinosr_espnet.bin.make_synth_corpus", "--out", str(second), "--seed", str(SEED), "--tiny", "--nj", "2")
    removed = sorted((second / "LibriSpeech").rglob("*.flac"))[::3]
    for path in removed:
        path.unlink()
    (second / ".complete").unlink()
    resumed = run_module("dinosr_espnet.bin.make_synth_corpus", "--out", str(second), "--seed", str(SEED), "--tiny")
    assert f"{len(removed)} new utterances" in resumed.stderr
    assert _audio_digests(second) == _audio_digests(corpus)
    for name in ("speakers.tsv", "frame_phones.txt", "lm_text.txt"):
        assert (second / name).read_text() == (corpus / name).read_text(), name
    skipped = run_module("dinosr_espnet.bin.make_synth_corpus", "--out", str(second), "--seed", str(SEED), "--tiny")
    assert "nothing to do" in skipped.stderr


def test_other_seed_gives_other_speakers_and_sentences(corpus):
    from dinosr_espnet.data.synth_plan import make_plan
    pool = (corpus / "text").glob("sentence_pool.*.txt").__next__().read_text().splitlines()
    first, second = make_plan(SEED, SIZES, pool), make_plan(SEED + 1, SIZES, pool)
    assert [c.utterances for c in first.chapters] != [c.utterances for c in second.chapters]
    assert make_plan(SEED, SIZES, pool).chapters == first.chapters


def test_corpus_info_reports_sizes(corpus):
    info = json.loads((corpus / "corpus_info.json").read_text())
    assert set(info["part_seconds"]) == set(TRAIN_PARTS + EVAL_PARTS)
    assert info["bytes"] > 0 and info["utterances"] > 0


# ---- the demo-size plan (pure: no synthesis) ----

def _synthetic_pool(count: int = 40000) -> list:
    """Sentences of 8-17 pseudo-words (~40-110 characters, like the real pool's)."""
    return [" ".join(f"W{(index * 7 + word) % 997}" for word in range(8 + index % 10)) for index in range(count)]


@pytest.fixture(scope="module")
def demo_plan():
    return make_plan(1, CorpusSizes(), _synthetic_pool())


def _planned_seconds(chapters) -> float:
    return sum(estimated_seconds(text, c.speaker.duration_stretch, c.speaker.speed, c.speaker.base_voice)
               for c in chapters for _, text in c.utterances)


def test_demo_plan_has_at_least_20x_the_1h_split_of_unlabeled_audio(demo_plan):
    sizes = demo_plan.sizes
    unlabeled = _planned_seconds([c for c in demo_plan.chapters if c.part in TRAIN_PARTS])
    one_hour_split = 6 * sizes.finetune_fold           # the largest split the demo fine-tunes on
    assert unlabeled >= 20 * one_hour_split
    # the labeled speakers can hold the whole 10h tree (6 folds + 9h), half per source part
    labeled = _planned_seconds([c for c in demo_plan.chapters if c.speaker.labeled])
    assert labeled >= 6 * sizes.finetune_fold + sizes.finetune_9h


def test_demo_plan_has_many_more_unlabeled_speakers_than_labeled_ones(demo_plan):
    unlabeled = {s.speaker for s in demo_plan.speakers() if s.part in TRAIN_PARTS}
    labeled = {s.speaker for s in demo_plan.speakers() if s.labeled}   # every speaker a labeled split can use
    assert labeled < unlabeled
    assert len(unlabeled) >= 100 and len(unlabeled) >= 5 * len(labeled)
    for voice in demo_plan.roles.training:     # each training voice gives several pseudo-speakers
        assert sum(s.base_voice == voice for s in demo_plan.speakers() if s.part in TRAIN_PARTS) >= 3, voice


def test_demo_plan_voice_roles_make_the_two_conditions(demo_plan):
    speakers = demo_plan.speakers()
    labeled_identities = {s.identity for s in speakers if s.labeled}
    unlabeled_identities = {s.identity for s in speakers if s.part in TRAIN_PARTS}
    condition_a = {s.identity for s in speakers if s.part in CONDITION_A_PARTS}
    condition_b = {s.identity for s in speakers if s.part in CONDITION_B_PARTS}
    assert labeled_identities < unlabeled_identities
    assert condition_a and condition_a <= unlabeled_identities - labeled_identities
    assert condition_b and not condition_b & unlabeled_identities
    # both conditions get the same mix of mild and strong (noisy) warps
    for part in EVAL_PARTS:
        noisy = [s.snr_db > 0 for s in speakers if s.part == part]
        assert 0.3 <= sum(noisy) / len(noisy) <= 0.7, part


def test_plan_is_deterministic_for_a_seed(demo_plan):
    pool = _synthetic_pool()
    assert plan_fingerprint(make_plan(1, CorpusSizes(), pool)) == plan_fingerprint(demo_plan)
    other = make_plan(2, CorpusSizes(), pool)
    assert plan_fingerprint(other) != plan_fingerprint(demo_plan)
    assert [s.pitch_cents for s in other.speakers()] != [s.pitch_cents for s in demo_plan.speakers()]


# Reserved for evaluation outside the project (DESIGN.md, voice policy), spelled out here
# independently of tts.RESERVED_VOICES.
RESERVED_NAMES = ("us3", "en1", "en-gb", "en_gb", "engb", "piper")


def _is_reserved(name: str) -> bool:
    return any(reserved in name.lower() for reserved in RESERVED_NAMES)


def test_no_reserved_voice_in_the_plan_the_voices_or_the_debian_packages(demo_plan):
    for voice in BASE_VOICES.values():
        assert not any(_is_reserved(field) for field in (voice.name, voice.voice, voice.package)), voice
    assert not any(_is_reserved(s.base_voice) for s in demo_plan.speakers())
    packages = [line.split("#")[0].strip() for line in (REPO_ROOT / "utils/debian_packages.txt").read_text().splitlines()]
    packages = [package for package in packages if package]
    assert "mbrola-us1" in packages and packages          # the list is parsed
    assert not [package for package in packages if _is_reserved(package)]
    assert not any("pico" in package for package in packages)     # pico (en-GB in the same package) unused


def test_a_reserved_voice_is_refused():
    from dinosr_espnet.data.tts import BaseVoice, check_voice_installed
    with pytest.raises(ValueError, match="reserved"):
        check_voice_installed(BaseVoice("mbrola_us3", "mbrola", "us3", "us3", "mbrola-us3", "sampa_us"))
