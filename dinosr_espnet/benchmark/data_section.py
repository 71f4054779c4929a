"""Section "data": reading FLACs (+ the crop-to-shortest collate) per worker, and padding waste.

FLACs with lengths drawn uniformly from 2-16 s (a LibriSpeech-like spread) are written to a
temporary directory with soundfile, then read back through a ``torch.utils.data.DataLoader``
whose collate is ``tasks.collate.CropToShortestCollate`` when that module exists. Padding waste
(padded samples / batch area) and crop loss (samples dropped by cropping to the shortest) of
random against length-sorted batches are computed on 4,000 lengths from the same distribution.
"""
import random
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from dinosr_espnet.benchmark.measure import measure_interleaved
from dinosr_espnet.benchmark.report import SectionResult
from dinosr_espnet.benchmark.settings import BenchmarkSettings
from dinosr_espnet.constants import SAMPLE_RATE

MIN_SECONDS, MAX_SECONDS = 2.0, 16.0


class FlacDataset(torch.utils.data.Dataset):
    """``(utt_id, {"speech": float32 array [samples]})`` per FLAC file, as ESPnet's ``sound`` loader gives."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        import soundfile

        speech, _ = soundfile.read(str(self.paths[index]), dtype="float32")
        return self.paths[index].stem, {"speech": speech}


def write_flacs(directory: Path, count: int, seed: int) -> (List[Path], float):
    """``count`` 16 kHz PCM_16 FLACs of noise-modulated tones; returns paths and total seconds."""
    import soundfile

    generator = np.random.default_rng(seed)
    paths, total = [], 0.0
    for index in range(count):
        samples = int(generator.uniform(MIN_SECONDS, MAX_SECONDS) * SAMPLE_RATE)
        time_axis = np.arange(samples) / SAMPLE_RATE
        # tone + noise: compresses like speech-ish audio, not like silence
        audio = 0.3 * np.sin(2 * np.pi * generator.uniform(100, 300) * time_axis) + 0.05 * generator.standard_normal(samples)
        path = directory / f"utt{index:05d}.flac"
        soundfile.write(str(path), audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
        total += samples / SAMPLE_RATE
    return paths, total


def project_collate() -> (Optional[Callable], str):
    try:
        from dinosr_espnet.tasks.collate import CropToShortestCollate
    except ImportError as error:
        return None, f"not yet measurable: tasks.collate.CropToShortestCollate ({error})"
    return CropToShortestCollate(max_sample_size=320000, min_sample_size=0), "CropToShortestCollate"


def batch_waste(lengths: Sequence[int], batch_size: int, sort: bool, seed: int) -> (float, float):
    """(padding waste, crop loss) of consecutive batches of ``batch_size``, random or length-sorted order.

    padding waste = padded samples / (batch size x longest), summed over batches;
    crop loss = samples dropped by cropping every utterance to the batch's shortest / all samples.
    """
    order = list(lengths)
    if sort:
        order.sort()
    else:
        random.Random(seed).shuffle(order)
    area = padded = dropped = 0
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        area += len(batch) * max(batch)
        padded += len(batch) * max(batch) - sum(batch)
        dropped += sum(batch) - len(batch) * min(batch)
    return padded / area, dropped / sum(order)


def run_data_section(settings: BenchmarkSettings, log) -> SectionResult:
    result = SectionResult("data")
    collate, collate_name = project_collate()
    if collate is None:
        result.messages.append(collate_name)
        collate = lambda items: items  # noqa: E731  (reading alone)
    workers = max(settings.data_workers, 0)
    with tempfile.TemporaryDirectory(prefix="dinosr_bench_data_") as directory:
        log(f"data: writing {settings.data_utterances} FLACs")
        paths, audio_seconds = write_flacs(Path(directory), settings.data_utterances, settings.seed)
        dataset = FlacDataset(paths)

        def read_only() -> None:
            for index in range(len(dataset)):
                dataset[index]

        def loader_epoch() -> None:
            loader = torch.utils.data.DataLoader(dataset, batch_size=settings.batch_size, shuffle=True,
                                                 num_workers=workers, collate_fn=collate)
            for _ in loader:
                pass

        timings = measure_interleaved({"read_flac": read_only, "dataloader": loader_epoch},
                                      torch.device("cpu"), settings.warmup, settings.repeats, log)
    count = len(paths)
    read = timings["read_flac"].median_seconds
    result.add("read_flac_utterances_per_second", count / read, "utt/s", "soundfile.read, one process")
    result.add("read_flac_audio_seconds_per_second", audio_seconds / read, "s/s", "soundfile.read, one process")
    per_worker = max(workers, 1)
    loader = timings["dataloader"].median_seconds
    note = f"DataLoader, {workers} worker(s), batch {settings.batch_size}, collate {collate_name}; per worker"
    result.add("dataloader_utterances_per_second_per_worker", count / loader / per_worker, "utt/s", note)
    result.add("dataloader_audio_seconds_per_second_per_worker", audio_seconds / loader / per_worker, "s/s", note)

    generator = np.random.default_rng(settings.seed + 1)
    lengths = (generator.uniform(MIN_SECONDS, MAX_SECONDS, 4000) * SAMPLE_RATE).astype(int).tolist()
    waste_batch = max(settings.batch_size, 8)
    for order in ("random", "sorted"):
        padding, crop = batch_waste(lengths, waste_batch, order == "sorted", settings.seed)
        result.add(f"padding_waste_{order}_batches", padding, "fraction",
                   f"batches of {waste_batch}, lengths uniform {MIN_SECONDS:g}-{MAX_SECONDS:g} s")
        result.add(f"crop_loss_{order}_batches", crop, "fraction", "audio dropped by crop-to-shortest")
    return result
