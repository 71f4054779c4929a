"""LibriSpeech preparation on a hand-made LibriSpeech-layout tree: bad input gets a clear error
naming the offending file. Also the shared Kaldi table readers of ``kaldi_data``."""
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest
import soundfile

from conftest import run_module
from dinosr_espnet.data.kaldi_data import (DataDirError, read_num_samples, read_table, read_table_map,
                                           validate_data_dir)
from dinosr_espnet.data.librispeech import prepare_data_dirs


def _make_tree(root: Path, texts: Dict[str, str], sample_rate: int = 16000, channels: int = 1,
               skip_audio: Optional[str] = None, garbage_audio: Optional[str] = None) -> Path:
    """root/LibriSpeech/dev-clean/<spk>/<chap>/... with one short tone per utterance."""
    part = root / "LibriSpeech" / "dev-clean"
    for uid, text in texts.items():
        speaker, chapter, _ = uid.split("-")
        directory = part / speaker / chapter
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / f"{speaker}-{chapter}.trans.txt", "a") as handle:
            handle.write(f"{uid} {text}\n")
        path = directory / f"{uid}.flac"
        if uid == skip_audio:
            continue
        if uid == garbage_audio:
            path.write_bytes(b"this is not a flac file" * 10)
            continue
        tone = 0.1 * np.sin(np.arange(sample_rate // 2) * 0.05).astype(np.float32)
        soundfile.write(str(path), np.stack([tone] * channels, axis=1) if channels > 1 else tone, sample_rate)
    return root / "LibriSpeech"


GOOD = {"11-22-0000": "HELLO WORLD", "11-22-0001": "IT'S A TEST", "33-44-0000": "ANOTHER ONE"}


def _prepare(librispeech: Path, tmp_path: Path) -> None:
    prepare_data_dirs(librispeech, None, tmp_path / "data", sets=["dev_clean"], log=lambda message: None)


def test_good_tree_gives_sorted_valid_dir(tmp_path):
    _prepare(_make_tree(tmp_path, GOOD), tmp_path)
    directory = tmp_path / "data" / "dev_clean"
    assert validate_data_dir(directory) == 3
    assert [line.split()[0] for line in (directory / "wav.scp").open()] == sorted(GOOD)
    assert (directory / "spk2utt").read_text() == "11 11-22-0000 11-22-0001\n33 33-44-0000\n"
    assert (directory / "utt2num_samples").read_text().splitlines()[0] == "11-22-0000 8000"


def test_missing_audio_is_named(tmp_path):
    with pytest.raises(DataDirError, match=r"11-22-0001\.flac: audio file does not exist"):
        _prepare(_make_tree(tmp_path, GOOD, skip_audio="11-22-0001"), tmp_path)


def test_unreadable_audio_is_named(tmp_path):
    with pytest.raises(DataDirError, match=r"33-44-0000\.flac: audio is unreadable"):
        _prepare(_make_tree(tmp_path, GOOD, garbage_audio="33-44-0000"), tmp_path)


def test_8khz_audio_is_named(tmp_path):
    with pytest.raises(DataDirError, match=r"11-22-0000\.flac: sample rate is 8000 Hz"):
        _prepare(_make_tree(tmp_path, GOOD, sample_rate=8000), tmp_path)


def test_stereo_audio_is_named(tmp_path):
    with pytest.raises(DataDirError, match=r"11-22-0000\.flac: audio has 2 channels"):
        _prepare(_make_tree(tmp_path, GOOD, channels=2), tmp_path)


def test_empty_transcript_is_named_with_its_line(tmp_path):
    texts = {**GOOD, "33-44-0001": ""}
    with pytest.raises(DataDirError, match=r"33-44\.trans\.txt:2: empty transcript"):
        _prepare(_make_tree(tmp_path, texts), tmp_path)


def test_transcript_outside_alphabet_is_named_with_its_line(tmp_path):
    texts = {**GOOD, "11-22-0001": "HELLO, World 42"}
    with pytest.raises(DataDirError, match=r"11-22\.trans\.txt:2: characters outside .*',24dlor' for 11-22-0001"):
        _prepare(_make_tree(tmp_path, texts), tmp_path)


def test_validation_names_unsorted_and_inconsistent_files(tmp_path):
    _prepare(_make_tree(tmp_path, GOOD), tmp_path)
    directory = tmp_path / "data" / "dev_clean"
    lines = (directory / "text").read_text().splitlines()
    (directory / "text").write_text("\n".join([lines[1], lines[0], lines[2]]) + "\n")
    with pytest.raises(DataDirError, match=r"dev_clean/text:2: not sorted"):
        validate_data_dir(directory)
    (directory / "text").write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(DataDirError, match=r"dev_clean/text:.*ids differ from wav.scp"):
        validate_data_dir(directory)
    (directory / "text").write_text("\n".join(lines[:2] + ["33-44-0000 BAD TEXT!"]) + "\n")
    with pytest.raises(DataDirError, match=r"dev_clean/text:3: characters outside"):
        validate_data_dir(directory)


def test_cli_reports_the_error_and_fails(tmp_path):
    librispeech = _make_tree(tmp_path, GOOD, sample_rate=8000)
    process = run_module("dinosr_espnet.bin.prepare_librispeech", "--librispeech_dir", str(librispeech),
                         "--datadir", str(tmp_path / "data"), "--sets", "dev_clean", check=False)
    assert process.returncode == 1
    assert "ERROR:" in process.stderr and "11-22-0000.flac" in process.stderr


def test_rerun_skips_complete_dirs_and_redoes_them_for_another_source(tmp_path):
    messages = []
    first = _make_tree(tmp_path / "a", GOOD)
    prepare_data_dirs(first, None, tmp_path / "data", sets=["dev_clean"], log=messages.append)
    prepare_data_dirs(first, None, tmp_path / "data", sets=["dev_clean"], log=messages.append)
    assert "skipped" not in messages[0] and "skipped" in messages[1]
    second = _make_tree(tmp_path / "b", {"55-66-0000": "OTHER WORDS"})
    prepare_data_dirs(second, None, tmp_path / "data", sets=["dev_clean"], log=messages.append)
    assert "skipped" not in messages[2]
    assert (tmp_path / "data/dev_clean/text").read_text() == "55-66-0000 OTHER WORDS\n"


def test_lm_resources_land_where_the_recipe_expects_them(tmp_path):
    import gzip
    librispeech = _make_tree(tmp_path, GOOD)
    lm_norm = tmp_path / "librispeech-lm-norm.txt.gz"
    with gzip.open(lm_norm, "wt") as handle:
        handle.write("A SENTENCE FOR THE LM\nHELLO WORLD\nnot normalised\nANOTHER ONE\n")
    arpa = tmp_path / "4-gram.arpa.gz"
    arpa.write_bytes(gzip.compress(b"\\data\\\n"))
    run_module("dinosr_espnet.bin.prepare_librispeech", "--librispeech_dir", str(librispeech),
               "--datadir", str(tmp_path / "data"), "--sets", "dev_clean",
               "--lm_text", str(lm_norm), "--arpa", str(arpa))
    lm_dir = tmp_path / "data" / "local" / "lm"
    # dev sentences (HELLO WORLD, ANOTHER ONE) and invalid lines are dropped
    assert (lm_dir / "lm_text.txt").read_text() == "A SENTENCE FOR THE LM\n"
    assert gzip.decompress((lm_dir / "official_4gram.arpa.gz").read_bytes()) == b"\\data\\\n"


# --------------------------------------------------------------------------------------------------
# Kaldi table readers
# --------------------------------------------------------------------------------------------------
def _table(tmp_path: Path, content: str, name: str = "table") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_table_map_keeps_file_order_and_values_with_spaces(tmp_path):
    path = _table(tmp_path, "b HELLO  WORLD \na\tsox x.wav -t wav - |\nc\n")
    assert list(read_table_map(path).items()) == [("b", "HELLO  WORLD"), ("a", "sox x.wav -t wav - |"), ("c", "")]
    assert read_table(path) == [(1, "b", "HELLO  WORLD "), (2, "a", "sox x.wav -t wav - |"), (3, "c", "")]


def test_duplicate_key_names_file_and_both_lines(tmp_path):
    path = _table(tmp_path, "a 1\nb 2\na 3\n")
    with pytest.raises(DataDirError, match=r"table:3: duplicate key 'a' \(first on line 1\)"):
        read_table_map(path)
    with pytest.raises(DataDirError, match=r"table:3: duplicate key 'a'"):
        read_num_samples(path)


def test_trailing_blank_lines_are_ignored_but_inner_ones_are_errors(tmp_path):
    assert read_table_map(_table(tmp_path, "a 1\nb 2\n\n  \n")) == {"a": "1", "b": "2"}
    with pytest.raises(DataDirError, match=r"table:2: blank line"):
        read_table_map(_table(tmp_path, "a 1\n\nb 2\n"))
    with pytest.raises(DataDirError, match=r"table:2: blank line"):
        read_table(_table(tmp_path, "a 1\n \t\nb 2\n"))
    assert read_table_map(_table(tmp_path, "")) == {}


def test_malformed_lines_name_file_and_line(tmp_path):
    with pytest.raises(DataDirError, match=r"table:2: missing key"):
        read_table_map(_table(tmp_path, "a 1\n b 2\n"))
    with pytest.raises(DataDirError, match=r"wav.scp:2: 'b' has no value"):
        read_table_map(_table(tmp_path, "a x.flac\nb\n", "wav.scp"), allow_empty=False)
    with pytest.raises(DataDirError, match=r"nothing_here: missing"):
        read_table_map(tmp_path / "nothing_here")


def test_unsorted_keys_are_rejected_only_when_sorting_is_required(tmp_path):
    path = _table(tmp_path, "b 1\na 2\n")
    assert list(read_table_map(path)) == ["b", "a"]
    with pytest.raises(DataDirError, match=r"table:2: not sorted"):
        read_table_map(path, require_sorted=True)


def test_num_samples_accepts_kaldi_and_espnet_shape_formats(tmp_path):
    path = _table(tmp_path, "u1 16000\nu2 123,1\nu3\t480\n")
    assert read_num_samples(path) == {"u1": 16000, "u2": 123, "u3": 480}


@pytest.mark.parametrize("value", ["12.5", "-3", "abc", "", "123,", "1 2"])
def test_num_samples_rejects_non_integers_naming_file_and_line(tmp_path, value):
    path = _table(tmp_path, f"u1 1\nu2 {value}\n", "utt2num_samples")
    with pytest.raises(DataDirError, match=r"utt2num_samples:2: expected '<utt> <num_samples>'"):
        read_num_samples(path)
