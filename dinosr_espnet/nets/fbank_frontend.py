"""Log-mel front end with convolutional subsampling: an alternative to the raw-waveform CNN.

Not part of the official DinoSR (which uses fairseq's raw-waveform CNN, ``frontend: cnn``). Small
models learn far faster from log-mel features than from a small raw-waveform CNN (measured for the
CPU demo, issue 14), which is why ESPnet's own small recipes use fbank. Chosen with
``frontend: fbank`` in the model config; everything after the front end (LayerNorm, projection,
masking, Transformer, teacher, codebooks) is unchanged.

Geometry: 25 ms Hann windows every 10 ms (400 / 160 samples at 16 kHz, no centring, zero-padded to a
512-point FFT as in Kaldi) give
``M = (N - 400) // 160 + 1`` frames at 100 Hz; each Conv2d block has a 3 x 3 kernel, padding 1 in
time and none in frequency, and a time stride from ``time_strides``. With the default ``(2, 1)``
the output is ``(N - 400) // 320 + 1`` frames at 50 Hz, frame ``i`` centred on sample
``320 i + 200``: exactly the frame grid of the official CNN, so frame-level phone labels,
masking spans and decoding frame times carry over unchanged.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400
HOP_SAMPLES = 160
FFT_SIZE = 512
LOG_FLOOR = 1e-6


def fbank_frames(lengths: Tensor) -> Tensor:
    """100 Hz analysis frames for ``lengths`` samples ``[batch]`` (0 below one window)."""
    return (torch.div(lengths - WINDOW_SAMPLES, HOP_SAMPLES, rounding_mode="floor") + 1).clamp(min=0)


def fbank_frame_geometry(time_strides: Sequence[int]) -> Tuple[int, int]:
    """``(window, stride)`` in samples such that the front end gives ``(N - window) // stride + 1`` frames.

    The same contract as the CNN's ``receptive_field_and_stride`` (used to bucket crop lengths):
    each block maps ``L`` frames to ``ceil(L / s)``, so ``M = (N - 400) // 160 + 1`` analysis frames
    become ``(N - 400) // (160 * prod(strides)) + 1``.
    """
    stride = HOP_SAMPLES
    for time_stride in time_strides:
        stride *= int(time_stride)
    return WINDOW_SAMPLES, stride


def htk_mel_filterbank(num_mels: int, num_frequencies: int = FFT_SIZE // 2 + 1) -> Tensor:
    """``[frequency, mel]`` triangular filters, equally spaced on the HTK mel scale from 0 Hz to Nyquist.

    ``mel(f) = 2595 log10(1 + f / 700)``; unnormalised triangles of peak 1 (torchaudio's
    ``melscale_fbanks(..., norm=None, mel_scale="htk")`` defines the same filters).
    """
    nyquist = SAMPLE_RATE / 2
    frequencies = torch.linspace(0.0, nyquist, num_frequencies, dtype=torch.float64)
    top_mel = 2595.0 * torch.log10(torch.tensor(1.0 + nyquist / 700.0, dtype=torch.float64))
    mel_points = torch.linspace(0.0, float(top_mel), num_mels + 2, dtype=torch.float64)
    hz_points = 700.0 * (10.0 ** (mel_points / 2595.0) - 1.0)
    lower, centre, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
    rising = (frequencies[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - frequencies[:, None]) / (upper - centre)[None, :]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def _conv_frequency_bins(num_mels: int, num_blocks: int) -> int:
    bins = num_mels
    for _ in range(num_blocks):
        bins = (bins - 3) // 2 + 1
    return bins


def fbank_feature_dim(num_mels: int, channels: int, num_blocks: int) -> int:
    """Channels x remaining mel bins after ``num_blocks`` frequency-stride-2 blocks."""
    bins = _conv_frequency_bins(num_mels, num_blocks)
    if bins < 1:
        raise ValueError(f"{num_mels} mel bins do not survive {num_blocks} frequency-stride-2 convolutions")
    return channels * bins


class LogMelSpectrogram(nn.Module):
    """``[batch, samples] -> [batch, frame100, num_mels]`` log power mel spectrum, computed in fp32.

    Each mel bin is mean-normalised over the utterance's valid frames (as ESPnet's default
    ``utterance_mvn``); padded frames are 0.
    """

    def __init__(self, num_mels: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WINDOW_SAMPLES), persistent=False)
        self.register_buffer("mel_filters", htk_mel_filterbank(num_mels), persistent=False)  # [freq, mel]

    def forward(self, waveform: Tensor, lengths: Tensor) -> Tensor:
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            # Kaldi-style framing: a 400-sample window every 160 samples, zero-padded to the FFT size.
            frames_of_samples = waveform.float().unfold(1, WINDOW_SAMPLES, HOP_SAMPLES)  # [batch, frame, 400]
            spectrum = torch.fft.rfft(frames_of_samples * self.window, n=FFT_SIZE)        # [batch, frame, freq]
            power = spectrum.real.square() + spectrum.imag.square()
            log_mel = torch.log(power @ self.mel_filters + LOG_FLOOR)
            frames = fbank_frames(lengths)
            valid = (torch.arange(log_mel.size(1), device=log_mel.device)[None, :] < frames[:, None])
            valid = valid.unsqueeze(-1)
            mean = (log_mel * valid).sum(dim=1, keepdim=True) / frames.clamp(min=1)[:, None, None]
            return (log_mel - mean) * valid


class Conv2dSubsamplingBlock(nn.Module):
    """Conv2d 3 x 3 (stride ``time_stride`` x 2, time padding 1) -> ReLU.

    ``[batch, in_channels, frame, bin] -> [batch, out_channels, frame', bin']``.
    """

    def __init__(self, in_channels: int, out_channels: int, time_stride: int) -> None:
        super().__init__()
        self.time_stride = time_stride
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=(time_stride, 2),
                              padding=(1, 0))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths - 1, self.time_stride, rounding_mode="floor") + 1


class FbankFrontEnd(nn.Module):
    """``[batch, samples] -> [batch, frames, channels * bins]``: log-mel, then Conv2d subsampling.

    Drop-in for ``FeatureExtractor`` (same ``forward(waveform)`` / ``output_lengths(lengths)``
    contract); the padded part of every intermediate map is re-zeroed, so an utterance gives the
    same features alone and inside a padded batch.
    """

    def __init__(self, num_mels: int = 80, channels: int = 64, time_strides: Sequence[int] = (2, 1)) -> None:
        super().__init__()
        self.log_mel = LogMelSpectrogram(num_mels)
        self.blocks = nn.ModuleList(
            Conv2dSubsamplingBlock(1 if index == 0 else channels, channels, stride)
            for index, stride in enumerate(time_strides))
        self.output_dim = fbank_feature_dim(num_mels, channels, len(self.blocks))

    def forward(self, waveform: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``waveform`` ``[batch, samples]``; ``lengths`` ``[batch]`` valid samples (default: all)."""
        if lengths is None:
            lengths = torch.full((waveform.size(0),), waveform.size(1), device=waveform.device)
        frames = fbank_frames(lengths)
        x = self.log_mel(waveform, lengths).unsqueeze(1)          # [batch, 1, frame100, mel]
        for block in self.blocks:
            x = block(x)
            frames = block.output_lengths(frames).clamp(min=0)
            valid = torch.arange(x.size(2), device=x.device)[None, :] < frames[:, None]
            x = x * valid[:, None, :, None].to(x.dtype)
        batch, channels, num_frames, bins = x.shape
        return x.permute(0, 2, 1, 3).reshape(batch, num_frames, channels * bins)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid output frames for ``lengths`` valid samples (default strides: (N - 400) // 320 + 1)."""
        frames = fbank_frames(lengths)
        for block in self.blocks:
            frames = block.output_lengths(frames)
        return torch.where(fbank_frames(lengths) > 0, frames, torch.zeros_like(frames))
