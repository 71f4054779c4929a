"""frame_phones IO, TextGrid conversion and alignment/model frame-count checks."""
import pytest

from conftest import run_module
from dinosr_espnet.data.kaldi_data import DataDirError, read_frame_phones
from dinosr_espnet.analysis.alignments import (
    AlignmentError, match_frame_count, num_frames, phones_at_model_stride, read_textgrid, segments_to_frame_phones,
    textgrid_to_frame_phones)

LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.2
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.2
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = "hi"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.2
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.05
            text = ""
        intervals [2]:
            xmin = 0.05
            xmax = 0.1
            text = "HH"
        intervals [3]:
            xmin = 0.1
            xmax = 0.15
            text = "AY1"
        intervals [4]:
            xmin = 0.15
            xmax = 0.2
            text = "sp"
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
0.2
<exists>
1
"IntervalTier"
"phones"
0
0.2
2
0
0.1
"spn"
0.1
0.2
"IY0"
'''


def test_long_textgrid_becomes_one_phone_per_frame_centre(tmp_path):
    path = tmp_path / "utt1.TextGrid"
    path.write_text(LONG_TEXTGRID)
    # 0.2 s = 3200 samples -> (3200-400)//320+1 = 9 frames, centres at 12.5 ms + 20 ms * i.
    phones = textgrid_to_frame_phones(path, num_samples=3200)
    centres = [(320 * i + 200) / 16000 for i in range(9)]
    expected = ["sil" if c < 0.05 else "hh" if c < 0.1 else "ay" if c < 0.15 else "sil" for c in centres]
    assert phones == expected
    assert len(phones) == num_frames(3200) == 9


def test_short_textgrid_format_and_stress_and_spn(tmp_path):
    path = tmp_path / "utt2.TextGrid"
    path.write_text(SHORT_TEXTGRID)
    tiers = read_textgrid(path)
    assert [tier.name for tier in tiers] == ["phones"]
    phones = textgrid_to_frame_phones(path)  # length from xmax: 3200 samples
    assert phones == ["sil"] * 5 + ["iy"] * 4


def test_malformed_textgrid_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.TextGrid"
    path.write_text(LONG_TEXTGRID.replace('xmax = 0.1\n            text = "HH"', 'xmax = oops\n            text = "HH"'))
    with pytest.raises(AlignmentError, match=r"bad\.TextGrid:\d+"):
        read_textgrid(path)


def test_unknown_phone_in_textgrid_is_an_error(tmp_path):
    path = tmp_path / "ipa.TextGrid"
    path.write_text(LONG_TEXTGRID.replace('"HH"', '"ʃ"'))
    with pytest.raises(AlignmentError, match="ipa.TextGrid.*not ARPAbet"):
        textgrid_to_frame_phones(path)


def test_converter_command_writes_frame_phones(tmp_path):
    grids = tmp_path / "grids"
    grids.mkdir()
    (grids / "spk-1-0001.TextGrid").write_text(LONG_TEXTGRID)
    (grids / "spk-1-0002.TextGrid").write_text(SHORT_TEXTGRID)
    lengths = tmp_path / "utt2num_samples"
    lengths.write_text("spk-1-0001 3200\nspk-1-0002 3520\n")
    output = tmp_path / "frame_phones"
    run_module("dinosr_espnet.bin.textgrid_to_frame_phones", "--textgrid_dir", str(grids),
               "--utt2num_samples", str(lengths), "--output", str(output))
    alignments = read_frame_phones(output)
    assert sorted(alignments) == ["spk-1-0001", "spk-1-0002"]
    assert len(alignments["spk-1-0002"]) == num_frames(3520) == 10


def test_converter_command_reports_a_malformed_utt2num_samples_cleanly(tmp_path):
    grids = tmp_path / "grids"
    grids.mkdir()
    (grids / "spk-1-0001.TextGrid").write_text(LONG_TEXTGRID)
    lengths = tmp_path / "utt2num_samples"
    lengths.write_text("spk-1-0001 3200\nspk-1-0002 many\n")
    process = run_module("dinosr_espnet.bin.textgrid_to_frame_phones", "--textgrid_dir", str(grids),
                         "--utt2num_samples", str(lengths), "--output", str(tmp_path / "frame_phones"), check=False)
    assert process.returncode == 1
    assert "utt2num_samples:2:" in process.stderr and "Traceback" not in process.stderr
    assert not (tmp_path / "frame_phones").exists()


def test_frame_phones_errors_name_file_and_line(tmp_path):
    path = tmp_path / "frame_phones"
    path.write_text("a sil aa\nb sil xx sil\n")
    with pytest.raises(DataDirError, match=r"frame_phones:2.*xx"):
        read_frame_phones(path)
    path.write_text("a sil aa\na sil\n")
    with pytest.raises(DataDirError, match=r"frame_phones:2.*twice"):
        read_frame_phones(path)


def test_frame_count_mismatch_of_more_than_one_frame_names_the_utterance():
    assert match_frame_count("u1", ["sil"] * 10, 11) == 10
    assert match_frame_count("u1", ["sil"] * 10, 9) == 9
    with pytest.raises(AlignmentError, match="'u7'.*10 frames.*12"):
        match_frame_count("u7", ["sil"] * 10, 12)


def test_alignment_resampled_to_a_25_hz_model_labels_each_model_frame_centre():
    # Expected labels built directly from the segments at the 25 Hz model's frame centres, 640 j + 200.
    segments = [(0.0, 0.13, "sil"), (0.13, 0.31, "ah"), (0.31, 0.335, "t"), (0.335, 0.62, "iy")]
    samples = 16000 * 62 // 100 + 333
    phones_50_hz = segments_to_frame_phones(segments, samples)
    expected = []
    for frame in range((samples - 400) // 640 + 1):
        centre = (640 * frame + 200) / 16000
        expected.append(next((phone for start, end, phone in segments if start <= centre < end), "sil"))
    assert phones_at_model_stride("u", phones_50_hz, 640) == expected
    assert phones_at_model_stride("u", phones_50_hz, 320) == phones_50_hz


@pytest.mark.parametrize("stride, window", [(480, 400), (640, 1040), (0, 400)])
def test_alignment_cannot_be_resampled_to_an_off_grid_model(stride, window):
    with pytest.raises(AlignmentError, match="'u'.*does not fall on that grid"):
        phones_at_model_stride("u", ["sil"] * 10, stride, window)
