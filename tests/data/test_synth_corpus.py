"""The synthetic corpus, prepared with the LibriSpeech preparation code: layout, split sizes,
held-out voices, alignments, determinism and resumability."""
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
from dinosr_espnet.data.synth_plan import EVAL_PARTS, TRAIN_PARTS, CorpusSizes

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


def test_dev_and_test_base_voices_never_occur_in_training(corpus, datadir):
    voices = _speaker_voices(corpus)
    train_speakers = set(_table(datadir / "train_960" / "utt2spk").values())
    train_identities = {voices[speaker][2] for speaker in train_speakers}
    train_voices = {voices[speaker][1] for speaker in train_speakers}
    for name in ("dev_clean", "dev_other", "test_clean", "test_other"):
        speakers = set(_table(datadir / name / "utt2spk").values())
        assert not speakers & train_speakers
        assert not {voices[speaker][1] for speaker in speakers} & train_voices
        assert not {voices[speaker][2] for speaker in speakers} & train_identities


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
