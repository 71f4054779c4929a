"""Pre-training batches as in fairseq's ``RawAudioDataset`` (spec 1.2 step 1): no padding.

Every utterance of a batch is cropped to the shortest one (capped at ``max_sample_size``) at a
random offset, so the model never sees padding and ``padding_mask`` stays ``None``. Utterances
shorter than ``min_sample_size`` are skipped; the task also removes them from the shape files, so
the batch sampler never puts them into a batch (see ``shape_filter.py``).

Normalisation order (``normalize``, the model's ``normalize_waveform``): as fairseq
(``RawAudioDataset.postprocess`` before ``crop_to_max_size``), each utterance is standardised over
its *whole* length, then cropped; the model is then told not to standardise the crop again
(``SSLPretrainModel`` passes ``standardized=True``). Standardising the crop instead would give a
different row (relative ~1e-2 on the CNN features). Whole utterances (fine-tuning, inference) are
standardised by the model itself, which is the same thing there.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from dinosr_espnet.nets.speech_encoder import standardize_waveform


class CropToShortestCollate:
    """Collate ``[(utt_id, {"speech": array[samples]})]`` into an unpadded batch.

    Args:
        max_sample_size: crop length cap in samples (official 320000 = 20 s).
        min_sample_size: utterances with fewer samples are dropped (official 32000 = 2 s).
        random_crop: random crop offset (training); ``False`` crops from the start, which keeps
            validation losses comparable between epochs.
        crop_multiple, crop_remainder: length buckets (issue 17; default 1, 0 = off, the official
            behaviour). The crop length is rounded *down* to the largest ``n`` with
            ``n % crop_multiple == crop_remainder``, so batches come in a few fixed shapes and
            compiled graphs are reused; a batch whose shortest utterance is below the first bucket
            keeps its length. Up to ``crop_multiple - 1`` more samples per utterance are cropped
            away than officially (``crop_bucket_samples`` computes the values for a frame multiple).
        normalize: standardise every utterance over its whole length (zero mean, unit variance,
            eps 1e-5) before cropping, as fairseq does (official ``task.normalize: true``).

    Returns from ``__call__``: ``(utt_ids, {"speech": Tensor[batch, samples],
    "speech_lengths": LongTensor[batch]})``; all lengths are equal.
    The crop offsets come from torch's global generator, which ESPnet reseeds every epoch
    (``seed + epoch``) and DataLoader workers derive their seed from: resuming is exact.
    """

    def __init__(self, max_sample_size: int = 320000, min_sample_size: int = 32000,
                 random_crop: bool = True, crop_multiple: int = 1, crop_remainder: int = 0,
                 normalize: bool = False):
        if max_sample_size <= 0 or min_sample_size < 0 or min_sample_size > max_sample_size:
            raise ValueError(f"need 0 <= min_sample_size ({min_sample_size}) <= "
                             f"max_sample_size ({max_sample_size}) and max_sample_size > 0")
        if crop_multiple < 1 or not 0 <= crop_remainder < crop_multiple:
            raise ValueError(f"need crop_multiple >= 1 and 0 <= crop_remainder < crop_multiple, "
                             f"got crop_multiple={crop_multiple}, crop_remainder={crop_remainder}")
        self.max_sample_size = max_sample_size
        self.min_sample_size = min_sample_size
        self.random_crop = random_crop
        self.crop_multiple = crop_multiple
        self.crop_remainder = crop_remainder
        self.normalize = normalize

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(max_sample_size={self.max_sample_size}, "
                f"min_sample_size={self.min_sample_size}, random_crop={self.random_crop}, "
                f"crop_multiple={self.crop_multiple}, crop_remainder={self.crop_remainder}, "
                f"normalize={self.normalize})")

    def bucketed(self, length: int) -> int:
        """Largest ``n <= length`` with ``n % crop_multiple == crop_remainder`` and ``n >= crop_multiple``
        (``length`` itself when there is none, or when bucketing is off)."""
        if self.crop_multiple == 1:
            return length
        bucket = length - (length - self.crop_remainder) % self.crop_multiple
        return bucket if bucket >= self.crop_multiple else length

    def __call__(self, data: Sequence[Tuple[str, Dict[str, np.ndarray]]]
                 ) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        kept = []
        for utt_id, item in data:
            speech = np.asarray(item["speech"])
            if speech.ndim != 1:
                raise ValueError(f"utterance {utt_id}: expected mono audio [samples], "
                                 f"got shape {speech.shape}")
            if len(speech) < self.min_sample_size:
                logging.warning(f"skipping {utt_id}: {len(speech)} samples < min_sample_size "
                                f"{self.min_sample_size}")
                continue
            kept.append((utt_id, speech))
        if not kept:
            raise RuntimeError(f"every utterance of the batch {[u for u, _ in data]} is shorter "
                               f"than min_sample_size={self.min_sample_size}")
        crop = self.bucketed(min(self.max_sample_size, min(len(speech) for _, speech in kept)))
        waveforms = []
        for _, speech in kept:
            waveform = torch.from_numpy(np.ascontiguousarray(speech)).float()
            if self.normalize:  # the whole utterance, before the crop (fairseq's order)
                waveform = standardize_waveform(waveform[None], torch.tensor([len(waveform)]))[0]
            excess = len(speech) - crop
            start = int(torch.randint(excess + 1, ()).item()) if self.random_crop and excess else 0
            waveforms.append(waveform[start:start + crop])
        speech_batch = torch.stack(waveforms)
        lengths = torch.full((len(kept),), crop, dtype=torch.long)
        return [u for u, _ in kept], {"speech": speech_batch, "speech_lengths": lengths}


def crop_bucket_samples(receptive_field: int, stride: int, bucket_frames: int) -> Tuple[int, int]:
    """``(crop_multiple, crop_remainder)`` whose buckets give a CNN output of a multiple of
    ``bucket_frames`` frames: a crop of ``receptive_field + stride * (F - 1)`` samples gives ``F``
    frames (Base: 400 + 320 (F - 1)), so ``crop_multiple = stride * bucket_frames`` and
    ``crop_remainder = (receptive_field - stride) % crop_multiple``."""
    if bucket_frames < 1:
        raise ValueError(f"crop_bucket_frames must be >= 1, got {bucket_frames}")
    multiple = stride * bucket_frames
    return multiple, (receptive_field - stride) % multiple
