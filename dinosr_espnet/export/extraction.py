"""``extract_features``: inputs (Kaldi data dir or audio files), length-sorted batches, ark/scp or .npy outputs.

Output dir (written beside it and renamed at the end, so it is complete or absent):

- ark format: ``<name>.ark`` + ``<name>.scp`` per output (``kaldiio.load_scp`` reads them back; scp rows in
  input order, paths absolute);
- npy format: ``<name>/<utterance>.npy``;
- ``utt2num_frames`` (input order) and ``extraction.json`` (model, request, frame geometry).
"""
from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from dinosr_espnet.export.features import BatchFeatureExtractor, FeatureRequest
from dinosr_espnet.export.model_dirs import inspect_model_dir, load_pretrained
from dinosr_espnet.export.output_dir import atomic_output_dir, check_output_dir

FORMATS = ("ark", "npy")


class InputError(ValueError):
    """A bad input list or audio entry; the message names the file, line or utterance."""


def read_waveform(audio: str, utterance: str, allow_commands: bool = False) -> np.ndarray:
    """Mono float32 16 kHz samples of one wav.scp value: the project's audio policy (``data/audio.py``),
    called only here."""
    from dinosr_espnet.data.audio import read_wav_scp_value

    try:
        return read_wav_scp_value(audio, allow_pipes=allow_commands)
    except (OSError, RuntimeError, ValueError) as error:
        message = str(error).strip()
        if utterance in message:
            raise InputError(message) from None
        raise InputError(f"utterance '{utterance}' ({audio}): {message}") from None


def data_dir_inputs(data_dir: Path) -> Tuple[List[str], Dict[str, str], Dict[str, int]]:
    """(utterance ids in wav.scp order, {utt: audio}, {utt: samples} when known) of a Kaldi data dir."""
    from dinosr_espnet.data.kaldi_data import read_data_dir

    directory = read_data_dir(data_dir)  # FileNotFoundError / DataDirError naming file:line
    return directory.utt_ids, directory.wav, directory.num_samples


def audio_file_inputs(paths: Sequence[str]) -> Tuple[List[str], Dict[str, str], Dict[str, int]]:
    """Utterance id = file name without extension; InputError for a missing file or a repeated id."""
    ids, audio = [], {}
    for path in paths:
        if not Path(path).is_file():
            raise InputError(f"audio file {path}: no such file")
        utterance = Path(path).stem
        if utterance in audio:
            raise InputError(f"audio files {audio[utterance]} and {path} both give utterance id '{utterance}'")
        ids.append(utterance)
        audio[utterance] = str(path)
    return ids, audio, {}


def audio_list_inputs(list_file: Path) -> Tuple[List[str], Dict[str, str], Dict[str, int]]:
    """A text file with one audio path per line (blank lines and ``#`` comments ignored)."""
    if not Path(list_file).is_file():
        raise InputError(f"audio list {list_file}: no such file")
    paths = []
    for number, line in enumerate(Path(list_file).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            if not Path(line).is_file():
                raise InputError(f"{list_file}:{number}: audio file {line} does not exist")
            paths.append(line)
    if not paths:
        raise InputError(f"audio list {list_file}: no audio paths")
    return audio_file_inputs(paths)


def check_commands(audio: Dict[str, str], allow_commands: bool) -> None:
    """wav.scp commands (``cmd |``) run a shell: only with the explicit flag (checked before any model
    is loaded; the reader refuses them too)."""
    from dinosr_espnet.data.audio import is_pipe

    if allow_commands:
        return
    for utterance, value in audio.items():
        if is_pipe(value):
            raise InputError(f"utterance '{utterance}': wav.scp entry is a shell command ({value!r}); pass "
                             f"--allow_wav_scp_commands to run it")


def length_batches(lengths: Dict[str, int], utterances: Sequence[str], max_batch_samples: int,
                   max_batch_size: int) -> List[List[str]]:
    """Longest first; a batch holds at most ``max_batch_size`` utterances and ``max_batch_samples`` padded
    samples (a longer utterance still gets a batch of its own)."""
    order = sorted(utterances, key=lambda utterance: -lengths[utterance])
    batches: List[List[str]] = []
    for utterance in order:
        if batches:
            batch = batches[-1]
            padded = lengths[batch[0]] * (len(batch) + 1)  # batch[0] is the longest of its batch
            if len(batch) < max_batch_size and padded <= max_batch_samples:
                batch.append(utterance)
                continue
        batches.append([utterance])
    return batches


class OutputWriter:
    """Writes each output either to ``<name>.ark``/``.scp`` or to ``<name>/<utt>.npy`` under ``directory``."""

    def __init__(self, directory: Path, final_dir: Path, names: Sequence[str], output_format: str) -> None:
        import kaldiio

        self.directory, self.final_dir, self.names, self.format = directory, final_dir, list(names), output_format
        self.writers = {}
        for name in self.names:
            if output_format == "ark":
                self.writers[name] = kaldiio.WriteHelper(f"ark,scp:{directory / (name + '.ark')},"
                                                         f"{directory / (name + '.scp')}")
            else:
                (directory / name).mkdir()

    def write(self, utterance: str, outputs: Dict[str, np.ndarray]) -> None:
        for name in self.names:
            if self.format == "ark":
                self.writers[name](utterance, outputs[name])
            else:
                np.save(self.directory / name / f"{utterance}.npy", outputs[name], allow_pickle=False)

    def close(self, order: Sequence[str]) -> None:
        """Finish the arks; rewrite each scp in input order with the final (absolute) ark path."""
        if self.format != "ark":
            return
        for name, writer in self.writers.items():
            writer.close()
            scp = self.directory / f"{name}.scp"
            temporary_ark = str(self.directory / f"{name}.ark")
            final_ark = str(self.final_dir.resolve() / f"{name}.ark")
            rows = {}
            for line in scp.read_text(encoding="utf-8").splitlines():
                utterance, location = line.split(" ", 1)
                path, offset = location.rsplit(":", 1)
                if path != temporary_ark:
                    raise RuntimeError(f"unexpected ark path in {scp}: {path}")
                rows[utterance] = f"{utterance} {final_ark}:{offset}\n"
            scp.write_text("".join(rows[utterance] for utterance in order), encoding="utf-8")


SAFE_UTTERANCE = re.compile(r"[^/\x00]+")


def extract(model_dir: Path, out_dir: Path, inputs: Tuple[List[str], Dict[str, str], Dict[str, int]],
            request: FeatureRequest, output_format: str = "ark", device: str = "cpu",
            max_batch_seconds: float = 160.0, max_batch_size: int = 16, checkpoint: Optional[str] = None,
            overwrite: bool = False, allow_commands: bool = False,
            progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """Extract ``request`` for every input utterance into ``out_dir``; returns the summary written to
    ``extraction.json``. Raises ValueError subclasses naming the bad input."""
    if output_format not in FORMATS:
        raise InputError(f"--format must be one of {FORMATS}, not {output_format!r}")
    check_output_dir(out_dir, overwrite)
    utterances, audio, known_lengths = inputs
    if not utterances:
        raise InputError("no utterances to extract")
    check_commands(audio, allow_commands)
    if output_format == "npy":
        bad = [utterance for utterance in utterances
               if not SAFE_UTTERANCE.fullmatch(utterance) or utterance in (".", "..")]
        if bad:
            raise InputError(f"utterance id {bad[0]!r} cannot be a .npy file name (use --format ark)")
    source = inspect_model_dir(model_dir, checkpoint)
    model = load_pretrained(source, device=device)
    extractor = BatchFeatureExtractor(model, request, device)
    started = time.time()
    sample_rate = extractor.geometry.sample_rate
    lengths = {utterance: known_lengths.get(utterance) for utterance in utterances}
    cache: Dict[str, np.ndarray] = {}
    for utterance in utterances:  # unknown lengths: read once now, keep for the batch
        if lengths[utterance] is None:
            cache[utterance] = read_waveform(audio[utterance], utterance, allow_commands)
            lengths[utterance] = len(cache[utterance])
    batches = length_batches(lengths, utterances, int(max_batch_seconds * sample_rate), max_batch_size)
    num_frames: Dict[str, int] = {}
    with atomic_output_dir(out_dir, overwrite) as directory:
        writer = OutputWriter(directory, Path(out_dir), extractor.output_names, output_format)
        done = 0
        for batch in batches:
            waveforms = [cache.pop(utterance, None) for utterance in batch]
            waveforms = [waveform if waveform is not None
                         else read_waveform(audio[utterance], utterance, allow_commands)
                         for utterance, waveform in zip(batch, waveforms)]
            for utterance, waveform in zip(batch, waveforms):
                if len(waveform) < extractor.geometry.receptive_field:
                    raise InputError(f"utterance '{utterance}' ({audio[utterance]}): {len(waveform)} samples, "
                                     f"shorter than one frame ({extractor.geometry.receptive_field})")
            for utterance, outputs in zip(batch, extractor(waveforms)):
                writer.write(utterance, outputs)
                num_frames[utterance] = len(next(iter(outputs.values())))
            done += len(batch)
            if progress is not None:
                progress(done, len(utterances))
        writer.close(utterances)
        (directory / "utt2num_frames").write_text(
            "".join(f"{utterance} {num_frames[utterance]}\n" for utterance in utterances), encoding="utf-8")
        summary = {"model_dir": str(model_dir), "checkpoint": str(source.checkpoint),
                   "model": source.config.get("model"), "request": asdict(request),
                   "unit_layers": extractor.unit_layers, "outputs": extractor.output_names,
                   "format": output_format, "utterances": len(utterances),
                   "frames": int(sum(num_frames.values())), "frame_geometry": extractor.geometry.to_dict(),
                   "seconds": round(time.time() - started, 3)}
        (directory / "extraction.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def progress_bar(stream=sys.stderr) -> Callable[[int, int], None]:
    """A tqdm bar over utterances (a periodic line when tqdm is missing or stderr is not a terminal)."""
    state = {"bar": None, "last": 0.0}

    def update(done: int, total: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None and stream.isatty():
            if state["bar"] is None:
                state["bar"] = tqdm(total=total, unit="utt", file=stream)
            state["bar"].update(done - state["bar"].n)
            if done == total:
                state["bar"].close()
        elif done == total or time.time() - state["last"] > 10:
            state["last"] = time.time()
            print(f"[extract_features] {done}/{total} utterances", file=stream, flush=True)

    return update


__all__ = ["FORMATS", "InputError", "audio_file_inputs", "audio_list_inputs", "data_dir_inputs", "extract",
           "length_batches", "progress_bar", "read_waveform"]
