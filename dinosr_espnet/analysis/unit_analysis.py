"""Unit quality of a DinoSR model's online codebooks, student heads and an offline k-means baseline.

Pass 1 runs the model once per utterance, counts (phone, unit) pairs for the codebooks and heads, and keeps
the teacher targets of the analysed layers (all of them, or a seeded random subset of at most
``kmeans_max_frames`` frames). k-means is fitted per layer on what was kept; when only a subset was kept,
pass 2 runs the model again to assign every frame to its nearest centroid.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from dinosr_espnet.analysis.alignments import (PHONES_IN_PHONETIC_ORDER, match_frame_count, phones_at_model_stride,
                                               phones_to_indices)
from dinosr_espnet.analysis.data_dir import Utterance, load_waveform
from dinosr_espnet.analysis.kmeans import assign, fit_kmeans
from dinosr_espnet.analysis.unit_extraction import UnitExtractor
from dinosr_espnet.analysis.unit_metrics import UnitQuality, joint_counts, unit_quality

UNIT_SOURCES = ("codebook", "head", "kmeans")
SOURCE_DESCRIPTIONS = {
    "codebook": "online codebook: nearest codeword to the instance-normed teacher layer",
    "head": "student head: argmax of head k on the final layer (unmasked input)",
    "kmeans": "offline k-means on the same instance-normed teacher layer",
}


@dataclass
class UnitAnalysis:
    layers: List[int]  # 1-based Transformer layer numbers analysed
    phones: Tuple[str, ...]
    joint: Dict[Tuple[str, int], np.ndarray] = field(default_factory=dict)  # (source, layer) -> [phone, unit]
    quality: Dict[Tuple[str, int], UnitQuality] = field(default_factory=dict)
    kmeans: Dict[int, Dict[str, float]] = field(default_factory=dict)  # layer -> fit details
    num_utterances: int = 0
    num_frames: int = 0


def _log_progress(log: Callable[[str], None], stage: str, done: int, total: int, started: float) -> None:
    if done == total or done % max(1, total // 10) == 0:
        log(f"{stage}: {done}/{total} utterances ({time.time() - started:.1f} s)")


def analyze_units(extractor: UnitExtractor, utterances: Sequence[Utterance], layers: Optional[Sequence[int]] = None,
                  kmeans_clusters: int = 256, kmeans_iterations: int = 10, kmeans_max_frames: int = 200000,
                  seed: int = 0, log: Callable[[str], None] = print) -> UnitAnalysis:
    """Every metric for every (unit source, layer); ``layers`` default: all target layers of the model.

    Sources: ``codebook``, ``head`` and ``kmeans``; only ``kmeans`` for a model without codebooks (data2vec).
    The 20 ms alignments are resampled to the model's frame rate (``phones_at_model_stride``).
    """
    layers = list(layers) if layers else list(extractor.layers)
    window, stride = extractor.model.config.frame_window_and_stride
    utterances = [replace(utterance, phones=phones_at_model_stride(utterance.utterance, utterance.phones, stride,
                                                                   window)) for utterance in utterances]
    codebook_indices = extractor.codebook_indices(layers)
    phones = PHONES_IN_PHONETIC_ORDER
    online_sources = ("codebook", "head") if extractor.has_codebooks else ()
    codebook_size = extractor.model.codebooks.codebook_size if extractor.has_codebooks else 0
    total_frames = sum(len(utterance.phones) for utterance in utterances)
    keep_fraction = min(1.0, kmeans_max_frames / max(total_frames, 1))
    generator = torch.Generator().manual_seed(seed)

    counts = {(source, layer): np.zeros((len(phones), codebook_size), dtype=np.int64)
              for source in online_sources for layer in layers}
    kept_targets: Dict[int, List[torch.Tensor]] = {layer: [] for layer in layers}
    kept_phones: List[np.ndarray] = []
    started = time.time()
    frames_used = 0
    for done, utterance in enumerate(utterances, start=1):
        units = extractor(torch.from_numpy(load_waveform(utterance.audio, utterance.utterance)))
        frames = match_frame_count(utterance.utterance, utterance.phones, units.targets.size(1))
        phone_ids = np.asarray(phones_to_indices(utterance.phones[:frames]))
        frames_used += frames
        keep = torch.ones(frames, dtype=torch.bool)
        if keep_fraction < 1.0:
            keep = torch.rand(frames, generator=generator) < keep_fraction
        kept_phones.append(phone_ids[keep.numpy()])
        for layer, index in zip(layers, codebook_indices):
            if extractor.has_codebooks:
                counts["codebook", layer] += joint_counts(phone_ids, units.codebook_units[index, :frames].numpy(),
                                                          len(phones), codebook_size)
                counts["head", layer] += joint_counts(phone_ids, units.head_units[index, :frames].numpy(),
                                                      len(phones), codebook_size)
            kept_targets[layer].append(units.targets[index, :frames][keep])
        _log_progress(log, "pass 1 (codebooks, heads)", done, len(utterances), started)

    centroids: Dict[int, torch.Tensor] = {}
    kmeans_details: Dict[int, Dict[str, float]] = {}
    for layer in layers:
        points = torch.cat(kept_targets[layer])
        clusters = min(kmeans_clusters, points.size(0))
        if clusters < kmeans_clusters:
            log(f"warning: layer {layer}: only {points.size(0)} frames, k-means uses {clusters} clusters")
        fit_started = time.time()
        result = fit_kmeans(points, num_clusters=clusters, iterations=kmeans_iterations, seed=seed)
        centroids[layer] = result.centroids
        kmeans_details[layer] = {"clusters": clusters, "fit_frames": int(points.size(0)), "iterations": result.iterations,
                        "inertia": result.inertia}
        log(f"k-means layer {layer}: {clusters} clusters on {points.size(0)} frames, {result.iterations} "
            f"iterations, inertia {result.inertia:.3f} ({time.time() - fit_started:.1f} s)")
        if keep_fraction >= 1.0:
            counts["kmeans", layer] = joint_counts(np.concatenate(kept_phones), assign(points, result.centroids).numpy(),
                                                   len(phones), clusters)
        else:
            counts["kmeans", layer] = np.zeros((len(phones), clusters), dtype=np.int64)
        kept_targets[layer] = []  # free memory before the next layer

    if keep_fraction < 1.0:
        started = time.time()
        for done, utterance in enumerate(utterances, start=1):
            units = extractor(torch.from_numpy(load_waveform(utterance.audio, utterance.utterance)))
            frames = match_frame_count(utterance.utterance, utterance.phones, units.targets.size(1))
            phone_ids = np.asarray(phones_to_indices(utterance.phones[:frames]))
            for layer, index in zip(layers, codebook_indices):
                labels = assign(units.targets[index, :frames], centroids[layer]).numpy()
                counts["kmeans", layer] += joint_counts(phone_ids, labels, len(phones), centroids[layer].size(0))
            _log_progress(log, "pass 2 (k-means assignment)", done, len(utterances), started)

    analysis = UnitAnalysis(layers=layers, phones=phones, kmeans=kmeans_details, num_utterances=len(utterances),
                            num_frames=frames_used)
    for source in (*online_sources, "kmeans"):
        for layer in layers:
            analysis.joint[source, layer] = counts[source, layer]
            analysis.quality[source, layer] = unit_quality(counts[source, layer])
    return analysis
