"""Parity with an independent implementation of the same architecture: Hugging Face Data2VecAudioModel."""
import pytest
import torch

from dinosr_espnet.nets import SpeechEncoder
from dinosr_espnet.nets.speech_encoder import standardize_waveform
from nets_test_utils import deterministic_tiny, random_batch

transformers = pytest.importorskip("transformers")


def hugging_face_copy(encoder: SpeechEncoder):
    """transformers' Data2VecAudioModel with our weights, through the export's parameter mapping (the
    expectation stays independent: the two implementations' outputs are compared, not the mapping)."""
    from dinosr_espnet.export.huggingface import build_hugging_face_model

    return build_hugging_face_model(encoder.config, encoder.state_dict(), mask_time_prob=0.5)


def test_student_matches_hugging_face_data2vec_audio():
    torch.manual_seed(0)
    encoder = SpeechEncoder(deterministic_tiny()).eval()
    reference = hugging_face_copy(encoder)
    waveform, lengths = random_batch([16000, 16000])
    frames = encoder.num_frames(16000)
    time_mask = torch.zeros(2, frames, dtype=torch.bool)
    time_mask[0, 4:14] = True
    ours = encoder(waveform, lengths, time_mask=time_mask).x
    with torch.no_grad():
        theirs = reference(standardize_waveform(waveform, lengths), mask_time_indices=time_mask).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-4)
