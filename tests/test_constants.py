"""The domain constants agree with what the code they describe computes (not with themselves)."""
import string

import torch

from dinosr_espnet.asr.token_list import char_token_list
from dinosr_espnet.constants import (CHARACTERS, FRAME_STRIDE_SAMPLES, PHONE_SET, RECEPTIVE_FIELD_SAMPLES,
                                     SAMPLE_RATE, num_frames)
from dinosr_espnet.nets.config import BASE_CONV_FEATURE_LAYERS
from dinosr_espnet.nets.feature_extractor import FeatureExtractor


def test_frame_geometry_is_the_base_cnn_front_end():
    stride, field = 1, 1
    for _, kernel, layer_stride in BASE_CONV_FEATURE_LAYERS:
        field += (kernel - 1) * stride
        stride *= layer_stride
    assert (stride, field) == (FRAME_STRIDE_SAMPLES, RECEPTIVE_FIELD_SAMPLES) == (320, 400)
    extractor = FeatureExtractor([(2, kernel, s) for _, kernel, s in BASE_CONV_FEATURE_LAYERS])
    for samples in (399, 400, 719, 720, 16000, 16123):
        frames = extractor(torch.zeros(1, samples)).shape[1] if samples >= 400 else 0
        assert num_frames(samples) == frames == int(extractor.output_lengths(torch.tensor([samples]))[0]), samples
    assert SAMPLE_RATE == 16000


def test_vocabulary_and_phone_set():
    assert CHARACTERS == ("'", *string.ascii_uppercase)
    assert char_token_list()[3:-1] == list(CHARACTERS)
    assert len(PHONE_SET) == 40 and "sil" in PHONE_SET and "ax" not in PHONE_SET
