"""Stage 2: python -m dinosr_espnet.bin.format_data (and utils/validate_data_dir.sh over it)."""
import sys

from conftest import run_module
from recipe_helpers import UTILS, run_bash, write_data_dir

DURATIONS = {"spk1-0001-0001": 1.0, "spk1-0001-0002": 3.0, "spk2-0002-0001": 25.0, "spk2-0002-0002": 5.0}


def format_data(tmp_path, *extra, check=True):
    return run_module("dinosr_espnet.bin.format_data", "--data_dir", str(tmp_path / "data"),
                      "--dump_dir", str(tmp_path / "dump"),
                      "--token_list", str(tmp_path / "data" / "token_list" / "char" / "tokens.txt"),
                      "--lm_text", str(tmp_path / "data" / "local" / "lm" / "lm_text.txt"), *extra,
                      check=check, timeout=60)


def prepare(tmp_path):
    write_data_dir(tmp_path / "data" / "train_960", DURATIONS, with_text=False)
    write_data_dir(tmp_path / "data" / "train_10m", DURATIONS)
    write_data_dir(tmp_path / "data" / "dev_clean", DURATIONS)
    (tmp_path / "data" / "local" / "lm").mkdir(parents=True)
    (tmp_path / "data" / "local" / "lm" / "lm_text.txt").write_text("HELLO WORLD\n")


def keys(path):
    return [line.split()[0] for line in path.read_text().splitlines()]


def test_pretraining_set_keeps_only_the_duration_window_and_lists_the_dropped(tmp_path):
    prepare(tmp_path)
    format_data(tmp_path, "--pretrain_sets", "train_960", "--min_duration", "2", "--max_duration", "20")
    dump = tmp_path / "dump" / "train_960"
    assert keys(dump / "wav.scp") == ["spk1-0001-0002", "spk2-0002-0002"]
    assert keys(dump / "speech_shape") == keys(dump / "wav.scp")
    assert (dump / "speech_shape").read_text().splitlines()[0] == "spk1-0001-0002 48000"
    dropped = (dump / "dropped.txt").read_text()
    assert "spk1-0001-0001 too_short" in dropped and "spk2-0002-0001 too_long" in dropped
    assert (dump / "spk2utt").read_text().splitlines() == ["spk1 spk1-0001-0002", "spk2 spk2-0002-0002"]
    assert (tmp_path / "dump" / "lm_text.txt").read_text() == "HELLO WORLD\n"


def test_finetuning_sets_have_no_minimum_and_evaluation_sets_no_filter(tmp_path):
    prepare(tmp_path)
    format_data(tmp_path, "--finetune_sets", "train_10m", "--finetune_max_duration", "20",
                "--eval_sets", "dev_clean")
    assert keys(tmp_path / "dump" / "train_10m" / "wav.scp") == ["spk1-0001-0001", "spk1-0001-0002",
                                                                "spk2-0002-0002"]
    assert keys(tmp_path / "dump" / "dev_clean" / "wav.scp") == sorted(DURATIONS)


def test_text_shape_counts_characters_and_vocabulary(tmp_path):
    prepare(tmp_path)
    format_data(tmp_path, "--eval_sets", "dev_clean")
    tokens = (tmp_path / "data" / "token_list" / "char" / "tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>" and "<space>" in tokens and "'" in tokens
    transcript = "HELLO WORLD'S END"
    first = (tmp_path / "dump" / "dev_clean" / "text_shape.char").read_text().splitlines()[0]
    assert first == f"spk1-0001-0001 {len(transcript)},{len(tokens)}"


def test_unsorted_data_dir_is_rejected_naming_file_and_line(tmp_path):
    prepare(tmp_path)
    wav_scp = tmp_path / "data" / "dev_clean" / "wav.scp"
    lines = wav_scp.read_text().splitlines()
    wav_scp.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    result = format_data(tmp_path, "--eval_sets", "dev_clean", check=False)
    assert result.returncode != 0
    assert "dev_clean/wav.scp:2" in result.stderr and "not sorted" in result.stderr
    assert not (tmp_path / "dump" / "dev_clean").exists()


def test_unknown_character_in_transcript_is_rejected(tmp_path):
    prepare(tmp_path)
    text = tmp_path / "data" / "train_10m" / "text"
    text.write_text(text.read_text().replace("HELLO", "hello", 1))
    result = format_data(tmp_path, "--finetune_sets", "train_10m", check=False)
    assert result.returncode != 0
    assert "train_10m/text:1" in result.stderr and "'ehlo'" in result.stderr  # the one transcript rule


def test_labelled_set_without_text_and_missing_audio_are_rejected(tmp_path):
    prepare(tmp_path)
    no_text = format_data(tmp_path, "--finetune_sets", "train_960", check=False)
    assert no_text.returncode != 0 and "train_960/text: missing" in no_text.stderr
    (tmp_path / "data" / "dev_clean" / "audio" / "spk2-0002-0001.flac").unlink()
    no_audio = format_data(tmp_path, "--eval_sets", "dev_clean", check=False)
    assert no_audio.returncode != 0 and "wav.scp:3" in no_audio.stderr


def test_mismatched_utterance_ids_are_rejected(tmp_path):
    prepare(tmp_path)
    utt2spk = tmp_path / "data" / "dev_clean" / "utt2spk"
    utt2spk.write_text("".join(utt2spk.read_text().splitlines(keepends=True)[:-1]))
    result = format_data(tmp_path, "--eval_sets", "dev_clean", check=False)
    assert result.returncode != 0
    assert "dev_clean/utt2spk:3: utterance ids differ" in result.stderr and "spk2-0002-0002" in result.stderr


def test_validate_data_dir_script_accepts_good_and_names_bad_dirs(tmp_path):
    prepare(tmp_path)
    script = str(UTILS / "validate_data_dir.sh")
    env = {"PYTHON": sys.executable}
    good = run_bash([script, str(tmp_path / "data" / "dev_clean")], cwd=tmp_path, env=env)
    assert good.returncode == 0, good.stderr
    unlabelled = run_bash([script, str(tmp_path / "data" / "train_960")], cwd=tmp_path, env=env)
    assert unlabelled.returncode != 0 and "train_960/text: missing" in unlabelled.stderr
    no_text = run_bash([script, "--no-text", str(tmp_path / "data" / "train_960")], cwd=tmp_path, env=env)
    assert no_text.returncode == 0, no_text.stderr
    assert not (tmp_path / "dump").exists()


def test_subset_takes_evenly_spread_utterances_of_a_labelled_set_unfiltered(tmp_path):
    prepare(tmp_path)
    ten = {f"spk{1 + index % 2}-0001-{index:04d}": 1.0 + index for index in range(10)}
    write_data_dir(tmp_path / "data" / "train_1h", ten)
    format_data(tmp_path, "--subsets", "train_fit:train_1h:4 tiny_fit:train_10m:100")
    fit = tmp_path / "dump" / "train_fit"
    # sorted ids 0..9, picks 0 * 10 // 4, 1 * 10 // 4, ... = indices 0, 2, 5, 7
    expected = sorted(ten)
    assert keys(fit / "wav.scp") == [expected[i] for i in (0, 2, 5, 7)]
    assert keys(fit / "text") == keys(fit / "text_shape.char") == keys(fit / "wav.scp")
    # fewer utterances than asked: all of them, no duration filter (the 25 s one stays)
    assert keys(tmp_path / "dump" / "tiny_fit" / "wav.scp") == sorted(DURATIONS)


def test_bad_subset_entries_and_unlabelled_sources_are_named(tmp_path):
    prepare(tmp_path)
    bad = format_data(tmp_path, "--subsets", "train_fit:train_10m", check=False)
    assert bad.returncode == 2 and "'train_fit:train_10m' is not NAME:SOURCE:COUNT" in bad.stderr
    unlabelled = format_data(tmp_path, "--subsets", "fit:train_960:2", check=False)
    assert unlabelled.returncode == 1 and "train_960/text: missing" in unlabelled.stderr
