"""Helpers shared by the nets tests (no test functions here)."""
import torch

from dinosr_espnet.nets.config import dinosr_tiny


def deterministic_tiny(**overrides):
    """Tiny config without dropout or LayerDrop, so train-mode forwards are reproducible."""
    values = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0)
    values.update(overrides)
    return dinosr_tiny(**values)


def random_batch(lengths, seed=0):
    """Waveforms ``[batch, max(lengths)]`` (zeros after each length) and ``lengths`` ``[batch]``."""
    generator = torch.Generator().manual_seed(seed)
    waveform = torch.zeros(len(lengths), max(lengths))
    for index, length in enumerate(lengths):
        waveform[index, :length] = torch.randn(length, generator=generator)
    return waveform, torch.tensor(lengths)
