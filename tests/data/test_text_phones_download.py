"""Transcript normalisation, frame labelling, downloads (dry run, checksum) and tool errors."""
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_module
from dinosr_espnet.data import download, tts
from dinosr_espnet.data.phones import frame_labels, num_frames, to_arpabet39
from dinosr_espnet.data.text_normalization import normalize_sentence, transcript_problem


def test_normalisation_is_librispeech_style():
    assert normalize_sentence("God said, \u201cLet there be light,\u201d and it\u2019s good.") == \
        "GOD SAID LET THERE BE LIGHT AND IT'S GOOD"
    assert normalize_sentence("burnt-offering of the caf\u00e9") == "BURNT OFFERING OF THE CAFE"
    assert normalize_sentence("In the year 42 he died") is None          # numbers: sentence skipped
    assert normalize_sentence("\u05d0\u05b1\u05dc\u05b9\u05d4\u05b4\u05d9\u05dd") is None


def test_transcript_problems_are_explained():
    assert transcript_problem("HELLO WORLD") is None
    assert transcript_problem("  ") == "empty transcript"
    assert "outside" in transcript_problem("HELLO world")
    assert "spaces" in transcript_problem("HELLO  WORLD")


def test_frame_count_and_centre_labels():
    assert num_frames(399) == 0 and num_frames(400) == 1 and num_frames(42960) == 134
    # sil until 0.05 s, then ah until 0.1 s; frame i centre = (320 i + 200) / 16000 s
    labels = frame_labels(["sil", "ah", "sil"], [0.05, 0.1, 0.2], 3200)
    assert len(labels) == (3200 - 400) // 320 + 1
    centres = [(320 * i + 200) / 16000 for i in range(len(labels))]
    assert labels == ["sil" if c < 0.05 else "ah" if c < 0.1 else "sil" for c in centres]
    # the last segment is stretched to the end of the audio
    assert frame_labels(["sil", "ah"], [0.01, 0.02], 16000)[-1] == "ah"


def test_synthesizer_phones_map_to_arpabet39():
    assert [to_arpabet39(p) for p in ("pau", "ax", "axr", "AH1", "zh")] == ["sil", "ah", "er", "ah", "zh"]
    with pytest.raises(ValueError, match="unknown phone 'qq'"):
        to_arpabet39("qq")


def test_missing_tts_program_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(tts.MissingToolError, match=r"apt-get install festvox-kallpc16k|apt-get install festival"):
        tts.check_voice_installed(tts.BASE_VOICES["fest_kal"])
    with pytest.raises(tts.MissingToolError, match=r"'flite' not found.*apt-get install flite"):
        tts.check_voice_installed(tts.BASE_VOICES["flite_awb"])


def test_dry_run_lists_every_resource_without_network(tmp_path):
    process = run_module("dinosr_espnet.bin.download_librispeech", "--download_dir", str(tmp_path), "--dry_run")
    lines = process.stdout.splitlines()
    assert len(lines) == len(download.RESOURCES) == 11
    assert any("openslr.org/resources/12/train-other-500.tar.gz" in line for line in lines)
    assert any("librispeech_finetuning.tgz\t~0.60 GB\t" + str(tmp_path) in line for line in lines)
    assert any("resources/11/4-gram.arpa.gz" in line and "md5:" in line for line in lines)
    assert not list(tmp_path.iterdir())


def test_checksum_mismatch_is_refused_and_match_is_remembered(tmp_path, monkeypatch):
    payload = b"pretend archive"
    good = download.Resource("x.txt", "http://unused/x.txt", "md5", hashlib.md5(payload).hexdigest(), 1, False)
    bad = download.Resource("y.txt", "http://unused/y.txt", "sha256", "0" * 64, 1, False)
    (tmp_path / "x.txt").write_bytes(payload)
    (tmp_path / "y.txt").write_bytes(payload)
    assert download.fetch(good, tmp_path, log=lambda m: None) == tmp_path / "x.txt"
    assert (tmp_path / ".x.txt.verified").exists()
    with pytest.raises(download.ChecksumError, match=r"y\.txt: sha256 .* != published"):
        download.fetch(bad, tmp_path, log=lambda m: None)
    assert (tmp_path / "y.txt.bad").exists() and not (tmp_path / "y.txt").exists()


def test_download_resumes_a_partial_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 64)
    target = tmp_path / "out" / "file.bin"
    target.parent.mkdir()
    (target.parent / "file.bin.part").write_bytes(source.read_bytes()[:1000])
    # file:// ignores Range, so the download starts over; the result must still be whole.
    download.download_with_resume(source.as_uri(), target, log=lambda m: None)
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("recipe", ["librispeech", "synth"])
def test_recipe_data_sh_dry_run_exits_zero_without_network(recipe, tmp_path):
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", str(REPO_ROOT / ".venv/bin/python"))}
    process = subprocess.run([str(REPO_ROOT / f"egs/{recipe}/dinosr1/local/data.sh"), "--datadir", str(tmp_path / "d"),
                              "--dry_run", "true"], env=env, capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert "dry run" in process.stderr
    assert not (tmp_path / "d").exists()
    if recipe == "librispeech":
        assert "train-clean-360.tar.gz" in process.stdout and "librispeech_finetuning.tgz" in process.stdout
