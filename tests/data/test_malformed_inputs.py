"""Every malformed input of issue 19, each from a generated fixture: one clear error naming the file (and
line), no traceback, nothing half-written, earlier good outputs kept. Prep (stage 1), stage 2,
decoding and unit analysis read audio through one policy (``data/audio.py``)."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import run_module
from dinosr_espnet.analysis.data_dir import load_waveform
from dinosr_espnet.data.audio import AudioError, check_audio, read_wav_scp_value
from dinosr_espnet.data.kaldi_data import DataDirError, load_data_dir, read_data_dir
from dinosr_espnet.data.librispeech import prepare_data_dirs
from dinosr_espnet.decode.emissions import compute_emissions


def tone(seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> np.ndarray:
    samples = (0.1 * np.sin(np.arange(int(seconds * rate)) * 0.05)).astype(np.float32)
    return np.stack([samples] * channels, axis=1) if channels > 1 else samples


def write_flac(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), tone(seconds, rate, channels), rate, format="FLAC")
    return path


def write_mp3(path: Path) -> Path:
    """MP3 content under any name (libsndfile >= 1.1 writes MPEG layer III)."""
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile cannot write MP3 (needs >= 1.1)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with soundfile.SoundFile(str(path), "w", 16000, 1, format="MP3") as handle:
        handle.write(tone())
    return path


def write_truncated_flac(path: Path, fraction: float = 0.6) -> Path:
    write_flac(path, seconds=2.0)
    content = path.read_bytes()
    path.write_bytes(content[:int(len(content) * fraction)])
    return path


def chapter(part: Path, speaker: str, chapter_id: str, lines: dict, audio: bool = True) -> Path:
    """part/<speaker>/<chapter>/ with a trans.txt of ``lines`` ({uid: text}) and a good FLAC per uid."""
    directory = part / speaker / chapter_id
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{speaker}-{chapter_id}.trans.txt").write_text("".join(f"{u} {t}\n" for u, t in lines.items()))
    if audio:
        for uid in lines:
            write_flac(directory / f"{uid}.flac")
    return directory


def good_tree(root: Path) -> Path:
    part = root / "LibriSpeech" / "dev-clean"
    chapter(part, "11", "22", {"11-22-0000": "HELLO WORLD", "11-22-0001": "IT'S A TEST"})
    chapter(part, "33", "44", {"33-44-0000": "ANOTHER ONE"})
    return root / "LibriSpeech"


def prepare(librispeech: Path, datadir: Path, sets=("dev_clean",)):
    return prepare_data_dirs(librispeech, None, datadir, sets=list(sets), log=lambda message: None)


def prepare_cli(librispeech: Path, datadir: Path, *sets):
    return run_module("dinosr_espnet.bin.prepare_librispeech", "--librispeech_dir", str(librispeech),
                      "--datadir", str(datadir), "--sets", *(sets or ["dev_clean"]), check=False)


# --------------------------------------------------------------------------------------------------
# data preparation: every problem of a tree in one run
# --------------------------------------------------------------------------------------------------
def test_prep_names_every_problem_of_a_tree_in_one_run_and_writes_nothing(tmp_path):
    librispeech = good_tree(tmp_path)
    part = librispeech / "dev-clean"
    directory = part / "11" / "22"
    lines = {"11-22-0002": "AN EMPEE THREE", "11-22-0003": "CUT SHORT", "11-22-0004": "EIGHT KILOHERTZ",
             "11-22-0005": "TWO CHANNELS", "11-22-0006": "NO AUDIO", "11-22-0007": "GARBAGE", "11-22-0008": "",
             "11-22-0010": "EMPTY AUDIO"}
    with open(directory / "11-22.trans.txt", "a") as handle:
        handle.write("".join(f"{u} {t}\n" for u, t in lines.items()))
    write_mp3(directory / "11-22-0002.flac")
    write_truncated_flac(directory / "11-22-0003.flac")
    write_flac(directory / "11-22-0004.flac", rate=8000)
    write_flac(directory / "11-22-0005.flac", channels=2)
    (directory / "11-22-0007.flac").write_bytes(b"not audio at all" * 20)
    (directory / "11-22-0010.flac").write_bytes(b"")
    write_flac(directory / "11-22-0009.flac")                                    # orphan: no transcript line
    chapter(part, "55", "66", {"55-66-0000": "NO TRANSCRIPT FILE"})
    (part / "55" / "66" / "55-66.trans.txt").unlink()                           # chapter without trans.txt
    chapter(part, "77", "88", {"77-88-0000": "FINE", "77-88-0001": "LATIN ONE"})
    (part / "77" / "88" / "77-88.trans.txt").write_bytes(b"77-88-0000 FINE\n77-88-0001 CAF\xc9\n")  # Latin-1
    chapter(part, "11", "23", {"33-23-0000": "WRONG SPEAKER"})                 # speaker/directory mismatch
    chapter(part, "99", "11", {"99-11-0000": "lower case"})

    process = prepare_cli(librispeech, tmp_path / "data")
    assert process.returncode == 1 and "Traceback" not in process.stderr
    expected = [
        "11-22-0002.flac: named .flac but the content is MP3",
        "11-22-0003.flac: audio is truncated or corrupt",
        "11-22-0004.flac: sample rate is 8000 Hz",
        "11-22-0005.flac: audio has 2 channels",
        "11-22-0006.flac: audio file does not exist",
        "11-22-0007.flac: audio is unreadable",
        "11-22.trans.txt:9: empty transcript for 11-22-0008",
        "11-22-0008.flac: audio file does not exist",
        "11-22-0010.flac: audio is unreadable",
        "11-22-0009.flac: orphan audio (no line in 11-22.trans.txt)",
        "55/66/55-66.trans.txt: missing (1 audio files",
        "77-88.trans.txt:2: not UTF-8 (byte 0xc9 at column 15)",
        "77-88-0001.flac: orphan audio",  # its line is not readable
        "11-23.trans.txt:1: utterance id '33-23-0000' does not belong in 11/23/",
        "99-11.trans.txt:1: characters outside A-Z",
    ]
    for message in expected:
        assert message in process.stderr, f"{message!r} not in\n{process.stderr}"
    assert f"ERROR: {len(expected)} problems:" in process.stderr
    assert not (tmp_path / "data" / "dev_clean").exists()
    assert not list((tmp_path / "data").glob(".*.tmp")) if (tmp_path / "data").exists() else True


def test_a_failed_prep_keeps_the_earlier_good_dir_and_writes_the_good_sets(tmp_path):
    librispeech = good_tree(tmp_path)
    chapter(librispeech / "dev-other", "44", "55", {"44-55-0000": "OTHER PART"})
    prepare(librispeech, tmp_path / "data", sets=("dev_clean",))
    (tmp_path / "data" / "dev_clean" / ".done").unlink()  # redo it (as for another source tree)
    before = {path.name: path.read_bytes() for path in (tmp_path / "data" / "dev_clean").iterdir()}
    (librispeech / "dev-clean" / "11" / "22" / "11-22-0001.flac").write_bytes(b"broken")
    (librispeech / "dev-clean" / "33" / "44" / "33-44.trans.txt").write_text("33-44-0000 ANOTHER ONE\n33-44-0001 X\n")
    with pytest.raises(DataDirError) as error:
        prepare(librispeech, tmp_path / "data", sets=("dev_clean", "dev_other"))
    assert len(error.value.problems) == 2
    assert "11-22-0001.flac: audio is unreadable" in str(error.value)
    assert "33-44-0001.flac: audio file does not exist" in str(error.value)
    after = {path.name: path.read_bytes() for path in (tmp_path / "data" / "dev_clean").iterdir()}
    assert after == before  # the earlier good copy, untouched
    assert (tmp_path / "data" / "dev_other" / "wav.scp").read_text().startswith("44-55-0000 ")  # the good set
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["dev_clean", "dev_other"]


def test_corpus_path_with_colon_and_spaces_works_through_stage_2(tmp_path):
    librispeech = good_tree(tmp_path / "corpus: one, 'two'")
    prepare(librispeech, tmp_path / "data")
    assert ":" in (tmp_path / "data" / "dev_clean" / "wav.scp").read_text()
    (tmp_path / "data" / "local" / "lm").mkdir(parents=True)
    (tmp_path / "data" / "local" / "lm" / "lm_text.txt").write_text("HELLO\n")
    result = format_data(tmp_path, "--eval_sets", "dev_clean", "--check_audio", "full")
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "dump" / "dev_clean" / "wav.scp").read_text().splitlines()) == 3


# --------------------------------------------------------------------------------------------------
# stage 2 (bin/format_data.py)
# --------------------------------------------------------------------------------------------------
def format_data(tmp_path: Path, *extra: str):
    return run_module("dinosr_espnet.bin.format_data", "--data_dir", str(tmp_path / "data"),
                      "--dump_dir", str(tmp_path / "dump"), "--token_list", str(tmp_path / "tokens.txt"),
                      "--lm_text", str(tmp_path / "data" / "local" / "lm" / "lm_text.txt"), *extra,
                      check=False, timeout=60)


def make_data_dir(directory: Path, audio: dict, texts: dict = None, samples: dict = None) -> Path:
    """A data dir listing ``audio`` ({uid: wav.scp value}); sample counts read from the files."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = sorted(audio)
    counts = samples or {u: soundfile.info(audio[u]).frames for u in ids}
    (directory / "wav.scp").write_text("".join(f"{u} {audio[u]}\n" for u in ids))
    (directory / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    (directory / "utt2num_samples").write_text("".join(f"{u} {counts[u]}\n" for u in ids))
    (directory / "text").write_text("".join(f"{u} {(texts or {}).get(u, 'HELLO WORLD')}\n" for u in ids))
    return directory


def lm_text(tmp_path: Path) -> None:
    (tmp_path / "data" / "local" / "lm").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "local" / "lm" / "lm_text.txt").write_text("HELLO WORLD\n")


def test_clips_below_the_minimum_are_dropped_from_finetuning_and_eval_sets_and_listed(tmp_path):
    audio = {"a-1-0001": str(write_flac(tmp_path / "audio" / "long.flac", 1.0)),
             "a-1-0002": str(write_flac(tmp_path / "audio" / "clip.flac", 0.1))}
    for name in ("train_10m", "dev_clean"):
        make_data_dir(tmp_path / "data" / name, audio)
    lm_text(tmp_path)
    result = format_data(tmp_path, "--finetune_sets", "train_10m", "--eval_sets", "dev_clean")
    assert result.returncode == 0, result.stderr
    for name in ("train_10m", "dev_clean"):
        assert (tmp_path / "dump" / name / "wav.scp").read_text().split()[0] == "a-1-0001"
        assert (tmp_path / "dump" / name / "dropped.txt").read_text() == "a-1-0002 too_short 0.10s < 0.5s\n"
    assert "warning: 1 utterances of evaluation set dev_clean" in result.stderr
    assert "dev_clean/dropped.txt" in result.stderr


def test_stage_2_names_bad_audio_of_every_set_and_writes_nothing(tmp_path):
    good = str(write_flac(tmp_path / "audio" / "good.flac"))
    make_data_dir(tmp_path / "data" / "dev_clean", {
        "a-1-0001": good, "a-1-0002": str(write_flac(tmp_path / "audio" / "rate.flac", rate=8000)),
        "a-1-0003": str(write_mp3(tmp_path / "audio" / "mp3.flac"))}, samples={"a-1-0001": 8000, "a-1-0002": 4000,
                                                                           "a-1-0003": 8000})
    make_data_dir(tmp_path / "data" / "dev_other", {"a-1-0001": good}, samples={"a-1-0001": 9999})
    lm_text(tmp_path)
    result = format_data(tmp_path, "--eval_sets", "dev_clean dev_other")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "3 problems" in result.stderr
    assert "dev_clean/wav.scp:2: " in result.stderr and "rate.flac: sample rate is 8000 Hz" in result.stderr
    assert "dev_clean/wav.scp:3: " in result.stderr and "mp3.flac: named .flac but the content is MP3" in result.stderr
    assert "dev_other/wav.scp:1: " in result.stderr and "has 8000 samples, the sample counts list 9999" in result.stderr
    assert not (tmp_path / "dump").exists() and not (tmp_path / "tokens.txt").exists()


def test_wav_scp_commands_are_refused_unless_allowed_and_then_still_checked(tmp_path):
    good = write_flac(tmp_path / "audio" / "good.flac")
    low = write_flac(tmp_path / "audio" / "low.flac", rate=8000)
    marker = tmp_path / "ran"
    directory = make_data_dir(tmp_path / "data" / "dev_clean", {
        "a-1-0001": str(good), "a-1-0002": f"cat '{good}' && touch '{marker}' |"},
        samples={"a-1-0001": 8000, "a-1-0002": 8000})
    lm_text(tmp_path)
    refused = format_data(tmp_path, "--eval_sets", "dev_clean")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "dev_clean/wav.scp:2: " in refused.stderr and "--allow_wav_scp_pipes true" in refused.stderr
    assert not marker.exists(), "a refused command ran"
    allowed = format_data(tmp_path, "--eval_sets", "dev_clean", "--allow_wav_scp_pipes", "true")
    assert allowed.returncode == 0, allowed.stderr
    assert marker.exists()  # checked by running it, not skipped
    (directory / "wav.scp").write_text(f"a-1-0001 {good}\na-1-0002 cat '{low}' |\n")
    checked = format_data(tmp_path, "--eval_sets", "dev_clean", "--allow_wav_scp_pipes", "true")
    assert checked.returncode == 1 and "wav.scp:2: " in checked.stderr and "sample rate is 8000 Hz" in checked.stderr


def test_tables_that_are_not_utf8_are_named_with_their_line(tmp_path):
    directory = make_data_dir(tmp_path / "data" / "dev_clean", {"a-1-0001": str(write_flac(tmp_path / "a.flac"))})
    (directory / "text").write_bytes(b"a-1-0001 CAF\xe9\n")
    with pytest.raises(DataDirError, match=r"dev_clean/text:1: not UTF-8 \(byte 0xe9 at column 13\)"):
        load_data_dir(directory)


# --------------------------------------------------------------------------------------------------
# the audio policy itself, and its readers in decoding and unit analysis
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def bad_audio(tmp_path):
    """{uid: (wav.scp value, reason the policy gives)} for each kind of bad audio."""
    return {
        "u-1": (str(write_flac(tmp_path / "r8.flac", rate=8000)), "sample rate is 8000 Hz"),
        "u-2": (str(write_flac(tmp_path / "r11.flac", rate=11025)), "sample rate is 11025 Hz"),
        "u-3": (str(write_flac(tmp_path / "r44.flac", rate=44100)), "sample rate is 44100 Hz"),
        "u-4": (str(write_flac(tmp_path / "stereo.flac", channels=2)), "audio has 2 channels"),
        "u-5": (str(write_mp3(tmp_path / "mp3.flac")), "named .flac but the content is MP3"),
        "u-6": (str(write_mp3(tmp_path / "plain.mp3")), "container is MP3, expected FLAC or WAV"),
        "u-7": (str(tmp_path / "missing.flac"), "audio file does not exist"),
        "u-8": (str(write_truncated_flac(tmp_path / "cut.flac")), "audio is truncated or corrupt"),
    }


def test_the_policy_refuses_each_kind_of_bad_audio_naming_the_file(bad_audio):
    for uid, (path, reason) in bad_audio.items():
        with pytest.raises(AudioError) as error:
            check_audio(path, full_decode=True)
        assert str(error.value).startswith(f"{path}: {reason}"), (uid, str(error.value))
        if uid != "u-8":  # a truncated file has a good header: only a full decode (prep) or a read finds it
            with pytest.raises(AudioError, match=reason):
                read_wav_scp_value(path)


def test_good_audio_reads_as_float_samples_with_the_header_length(tmp_path):
    path = write_flac(tmp_path / "good.flac", seconds=0.25)
    samples = read_wav_scp_value(str(path))
    assert samples.dtype == np.float32 and samples.shape == (4000,)
    np.testing.assert_allclose(samples, tone(0.25), atol=1 / 32768)  # PCM_16 quantisation only
    wav = tmp_path / "good.wav"
    soundfile.write(str(wav), tone(0.25), 16000)
    assert check_audio(str(wav), full_decode=True).container == "WAV"
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty.wav: audio is empty"):
        check_audio(str(empty))
    flac_in_wav = tmp_path / "flac.wav"
    shutil.copy(path, flac_in_wav)
    with pytest.raises(AudioError, match=r"flac.wav: named .wav but the content is FLAC"):
        check_audio(str(flac_in_wav))


def test_decoding_names_every_bad_utterance_before_the_model_runs(tmp_path, bad_audio):
    values = {uid: value for uid, (value, _) in bad_audio.items()}
    values["u-0"] = str(write_flac(tmp_path / "good.flac"))
    directory = tmp_path / "dump" / "test_clean"
    directory.mkdir(parents=True)
    (directory / "wav.scp").write_text("".join(f"{u} {values[u]}\n" for u in sorted(values)))

    class NoModel:
        def encode(self, *_):
            raise AssertionError("the model must not run on a set with bad audio")

    with pytest.raises(DataDirError) as error:
        compute_emissions(NoModel(), ["<blank>"], read_data_dir(directory))
    message = str(error.value)
    # u-8 (truncated, good header) is found when it is read; the header check names the other seven
    assert f"{len(bad_audio) - 1} problems" in message
    for line, uid in enumerate(sorted(values), start=1):
        if uid not in ("u-0", "u-8"):
            assert f"test_clean/wav.scp:{line}: {bad_audio[uid][0]}: {bad_audio[uid][1]}" in message, uid
    result = run_module("dinosr_espnet.bin.asr_inference", "--asr_train_config", str(tmp_path / "none.yaml"),
                        "--asr_model_file", str(tmp_path / "none.pth"), "--data_dir", str(directory),
                        "--output_dir", str(tmp_path / "out"), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "asr_inference: error:" in result.stderr and "r44.flac: sample rate is 44100 Hz" in result.stderr


def test_a_truncated_file_is_named_when_decoding_reads_it(tmp_path):
    directory = tmp_path / "dump" / "test_clean"
    directory.mkdir(parents=True)
    cut = write_truncated_flac(tmp_path / "cut.flac")
    (directory / "wav.scp").write_text(f"u-1 {cut}\n")

    class NoModel:
        def encode(self, *_):
            raise AssertionError("the model must not run on unreadable audio")

    with pytest.raises(DataDirError, match=r"test_clean/wav.scp: utterance u-1: .*cut.flac: audio is (unreadable|trunc)"):
        compute_emissions(NoModel(), ["<blank>"], read_data_dir(directory))


def test_decoding_and_analysis_refuse_commands_unless_allowed(tmp_path):
    good = write_flac(tmp_path / "good.flac")
    marker = tmp_path / "ran"
    command = f"cat '{good}'; touch '{marker}' |"
    directory = tmp_path / "dump" / "test_clean"
    directory.mkdir(parents=True)
    (directory / "wav.scp").write_text(f"u-1 {command}\n")
    with pytest.raises(DataDirError, match=r"test_clean/wav.scp:1: .*is a command .*--allow_wav_scp_pipes true"):
        compute_emissions(None, ["<blank>"], read_data_dir(directory))
    with pytest.raises(DataDirError, match=r"utterance 'u-1': .*is a command"):
        load_waveform(command, "u-1")
    assert not marker.exists()
    np.testing.assert_allclose(load_waveform(command, "u-1", allow_pipes=True), tone(), atol=1 / 32768)
    assert marker.exists()


def test_analysis_refuses_stereo_and_other_rates_instead_of_averaging(tmp_path):
    with pytest.raises(DataDirError, match=r"utterance 'u-1': .*stereo.flac: audio has 2 channels, expected mono"):
        load_waveform(str(write_flac(tmp_path / "stereo.flac", channels=2)), "u-1")
    with pytest.raises(DataDirError, match=r"utterance 'u-2': .*r8.flac: sample rate is 8000 Hz"):
        load_waveform(str(write_flac(tmp_path / "r8.flac", rate=8000)), "u-2")
