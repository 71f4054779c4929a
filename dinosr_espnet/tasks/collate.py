"""Pre-training batches as in fairseq's ``RawAudioDataset`` (spec 1.2 step 1): no padding.

Every utterance of a batch is cropped to the shortest one (capped at ``max_sample_size``) at a
random offset, so the model never sees padding and ``padding_mask`` stays ``None``. Utterances
shorter than ``min_sample_size`` are skipped; the task also removes them from the shape files, so
the batch sampler never puts them into a batch (see ``shape_filter.py``). Waveforms are not
normalised here: the model standardises each utterance (``normalize_waveform``).
"""
from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch



class CropToShortestCollate:
    """Collate ``[(utt_id, {"speech": array[samples]})]`` into an unpadded batch.

    Args:
        max_sample_size: crop length cap in samples (official 320000 = 20 s).
        min_sample_size: utterances with fewer samples are dropped (official 32000 = 2 s).
        random_crop: random crop offset (training); ``False`` crops from the start, which keeps
            validation losses comparable between epochs.

    Returns from ``__call__``: ``(utt_ids, {"speech": Tensor[batch, samples],
    "speech_lengths": LongTensor[batch]})``; all lengths are equal.
    The crop offsets come from torch's global generator, which ESPnet reseeds every epoch
    (``seed + epoch``) and DataLoader workers derive their seed from: resuming is exact.
    """

    def __init__(self, max_sample_size: int = 320000, min_sample_size: int = 32000,
                 random_crop: bool = True):
        if max_sample_size <= 0 or min_sample_size < 0 or min_sample_size > max_sample_size:
            raise ValueError(f"need 0 <= min_sample_size ({min_sample_size}) <= "
                             f"max_sample_size ({max_sample_size}) and max_sample_size > 0")
        self.max_sample_size = max_sample_size
        self.min_sample_size = min_sample_size
        self.random_crop = random_crop

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(max_sample_size={self.max_sample_size}, "
                f"min_sample_size={self.min_sample_size}, random_crop={self.random_crop})")

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
        crop = min(self.max_sample_size, min(len(speech) for _, speech in kept))
        waveforms = []
        for _, speech in kept:
            excess = len(speech) - crop
            start = int(torch.randint(excess + 1, ()).item()) if self.random_crop and excess else 0
            waveforms.append(torch.from_numpy(np.ascontiguousarray(speech[start:start + crop])))
        speech_batch = torch.stack(waveforms).float()
        lengths = torch.full((len(kept),), crop, dtype=torch.long)
        return [u for u, _ in kept], {"speech": speech_batch, "speech_lengths": lengths}
