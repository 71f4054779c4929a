"""Pre-training batches: cropped to the shortest utterance, capped, short ones skipped, no padding."""
import numpy as np
import pytest
import torch

from dinosr_espnet.tasks.collate import CropToShortestCollate
from dinosr_espnet.tasks.shape_filter import write_filtered_shape_file


def _batch(*lengths):
    return [(f"utt{i}", {"speech": np.arange(n, dtype=np.float32)}) for i, n in enumerate(lengths)]


def test_every_utterance_is_cropped_to_the_shortest():
    ids, batch = CropToShortestCollate(max_sample_size=1000, min_sample_size=10)(_batch(300, 120, 500))
    assert ids == ["utt0", "utt1", "utt2"]
    assert batch["speech"].shape == (3, 120)
    assert batch["speech_lengths"].tolist() == [120, 120, 120]


def test_crop_is_a_contiguous_window_at_a_random_offset():
    collate = CropToShortestCollate(max_sample_size=1000, min_sample_size=10)
    torch.manual_seed(0)
    starts = set()
    for _ in range(20):
        _, batch = collate(_batch(400, 100))
        window = batch["speech"][0]
        assert torch.equal(window, torch.arange(window[0], window[0] + 100, dtype=torch.float32))
        starts.add(int(window[0]))
    assert len(starts) > 5


def test_crop_length_is_capped_at_max_sample_size():
    _, batch = CropToShortestCollate(max_sample_size=50, min_sample_size=10)(_batch(300, 120))
    assert batch["speech"].shape == (2, 50)


def test_validation_crop_starts_at_zero():
    _, batch = CropToShortestCollate(50, 10, random_crop=False)(_batch(300, 120))
    assert batch["speech"][:, 0].tolist() == [0.0, 0.0]


def test_utterances_below_min_sample_size_are_skipped():
    ids, batch = CropToShortestCollate(max_sample_size=1000, min_sample_size=100)(_batch(300, 20, 150))
    assert ids == ["utt0", "utt2"] and batch["speech"].shape == (2, 150)


def test_batch_of_only_short_utterances_is_an_error():
    with pytest.raises(RuntimeError, match="min_sample_size"):
        CropToShortestCollate(max_sample_size=1000, min_sample_size=100)(_batch(20, 30))


def test_shape_file_filter_drops_short_and_caps_long(tmp_path):
    source = tmp_path / "speech_shape"
    source.write_text("a 31999\nb 32000\nc 500000\n")
    kept, skipped = write_filtered_shape_file(str(source), tmp_path / "out" / "shape", 32000, 320000)
    assert (kept, skipped) == (2, 1)
    assert (tmp_path / "out" / "shape").read_text() == "b 32000\nc 320000\n"


def test_malformed_shape_line_names_file_and_line(tmp_path):
    source = tmp_path / "speech_shape"
    source.write_text("a 40000\nb\n")
    with pytest.raises(ValueError, match="speech_shape:2"):
        write_filtered_shape_file(str(source), tmp_path / "shape", 32000, 320000)
