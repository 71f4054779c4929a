"""Pre-training batches: cropped to the shortest utterance, capped, short ones skipped, no padding."""
import numpy as np
import pytest
import torch

from dinosr_espnet.nets.config import dinosr_base, dinosr_tiny
from dinosr_espnet.nets.feature_extractor import FeatureExtractor, receptive_field_and_stride
from dinosr_espnet.tasks.collate import CropToShortestCollate, crop_bucket_samples
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


def test_base_cnn_geometry_is_400_samples_every_320():
    assert receptive_field_and_stride(dinosr_base().conv_feature_layers) == (400, 320)


@pytest.mark.parametrize("bucket_frames", [2, 5, 16])
def test_crop_buckets_give_a_multiple_of_the_bucket_frames_and_crop_less_than_one_bucket(bucket_frames):
    """The frame counts come from running the tiny CNN itself, not from the bucket formula."""
    config = dinosr_tiny()
    cnn = FeatureExtractor(config.conv_feature_layers)
    multiple, remainder = crop_bucket_samples(*receptive_field_and_stride(config.conv_feature_layers),
                                              bucket_frames)
    collate = CropToShortestCollate(max_sample_size=40000, min_sample_size=100, crop_multiple=multiple,
                                    crop_remainder=remainder)
    shapes = set()
    for shortest in range(multiple + 400, 40000, 997):
        _, batch = collate(_batch(shortest + 50, shortest))
        crop = batch["speech"].shape[1]
        assert shortest - multiple < crop <= shortest
        with torch.no_grad():
            frames = cnn(batch["speech"][:1]).shape[1]
        assert frames % bucket_frames == 0, (shortest, crop, frames)
        shapes.add(crop)
    assert len(shapes) <= 40000 // multiple + 1


def test_crop_buckets_cap_at_max_sample_size_and_keep_a_batch_below_the_first_bucket():
    collate = CropToShortestCollate(max_sample_size=1000, min_sample_size=10, crop_multiple=300,
                                    crop_remainder=80)
    assert collate(_batch(5000, 4000))[1]["speech"].shape == (2, 980)   # 1000 -> 980 = 3 * 300 + 80
    assert collate(_batch(250, 260))[1]["speech"].shape == (2, 250)     # no bucket >= 300 below 250
    assert CropToShortestCollate(1000, 10)(_batch(997, 999))[1]["speech"].shape == (2, 997)  # default: off
    with pytest.raises(ValueError, match="crop_remainder"):
        CropToShortestCollate(1000, 10, crop_multiple=300, crop_remainder=300)


def test_task_option_crop_bucket_frames_builds_buckets_from_the_model_cnn():
    import argparse

    from dinosr_espnet.tasks.dinosr import DinoSRTask

    args = argparse.Namespace(max_sample_size=320000, min_sample_size=32000, crop_bucket_frames=16,
                              model_conf={})
    collate = DinoSRTask.build_collate_fn(args, train=True)
    assert (collate.crop_multiple, collate.crop_remainder) == (16 * 320, 80)  # 80 + 5120 k samples -> 16 k frames
    args.crop_bucket_frames = 0
    collate = DinoSRTask.build_collate_fn(args, train=True)
    assert (collate.crop_multiple, collate.crop_remainder) == (1, 0)


def _fairseq_order(utterance: np.ndarray, start: int, length: int) -> np.ndarray:
    """fairseq: ``F.layer_norm(wav, wav.shape)`` on the whole utterance (biased variance, eps
    1e-5), then the crop; by hand in float64."""
    whole = (utterance - utterance.mean()) / np.sqrt(utterance.var() + 1e-5)
    return whole[start:start + length]


def _hand_made_utterances():
    """A loud, offset first half and a quiet second half: its crop has other statistics than the whole."""
    t = np.arange(24000) / 16000.0
    first = np.where(t < 0.75, 2.0 + 1.5 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 440 * t))
    second = 0.3 * np.cos(2 * np.pi * 130 * np.arange(16000) / 16000.0) - 0.05
    return [("long", {"speech": first.astype(np.float32)}), ("short", {"speech": second.astype(np.float32)})]


def test_normalize_standardises_whole_utterances_before_cropping():
    data = _hand_made_utterances()
    _, batch = CropToShortestCollate(64000, 1000, random_crop=False, normalize=True)(data)
    expected = np.stack([_fairseq_order(data[0][1]["speech"].astype(np.float64), 0, 16000),
                         _fairseq_order(data[1][1]["speech"].astype(np.float64), 0, 16000)])
    np.testing.assert_allclose(batch["speech"].numpy(), expected, atol=1e-5, rtol=0)
    # Cropping first and standardising the crop (the former order) gives another row.
    crop_first = data[0][1]["speech"][:16000].astype(np.float64)
    crop_first = (crop_first - crop_first.mean()) / np.sqrt(crop_first.var() + 1e-5)
    assert np.abs(batch["speech"][0].numpy() - crop_first).max() > 0.1


def test_random_crop_is_a_window_of_the_standardised_utterance():
    data = _hand_made_utterances()
    torch.manual_seed(3)
    _, batch = CropToShortestCollate(64000, 1000, random_crop=True, normalize=True)(data)
    utterance = data[0][1]["speech"].astype(np.float64)
    whole = _fairseq_order(utterance, 0, len(utterance))
    row = batch["speech"][0].numpy()
    start = int(np.argmin([np.abs(whole[s:s + 16000] - row).max() for s in range(0, 8001)]))
    np.testing.assert_allclose(row, _fairseq_order(utterance, start, 16000), atol=1e-5, rtol=0)


def test_pretraining_model_sees_fairseq_order_and_does_not_standardise_again(tmp_path):
    """Through the task: the CNN's input = whole-utterance standardisation, then crop."""
    import dinosr_espnet  # noqa: F401  (registration hook before ESPnet)
    from conftest import REPO_ROOT
    from dinosr_espnet.tasks.dinosr import DinoSRTask

    args = DinoSRTask.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf/pretrain_dinosr_tiny.yaml"), "--output_dir", str(tmp_path)])
    model = DinoSRTask.build_model(args)
    collate = DinoSRTask.build_collate_fn(args, train=False)
    seen = []
    model.ssl.student.feature_extractor.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    data = _hand_made_utterances()
    _, batch = collate(data)
    model(**batch)
    expected = np.stack([_fairseq_order(data[0][1]["speech"].astype(np.float64), 0, 16000),
                         _fairseq_order(data[1][1]["speech"].astype(np.float64), 0, 16000)])
    np.testing.assert_allclose(seen[0].detach().numpy(), expected, atol=1e-5, rtol=0)
