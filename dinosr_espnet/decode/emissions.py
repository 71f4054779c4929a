"""CTC emissions (log-posteriors) of a data dir, computed once and stored for every decoding setting.

Storage: one ``.npz`` with ``log_probs`` ``[total_frames, vocab]`` (float32, utterances
concatenated), ``lengths`` ``[utterance]``, ``utt_ids``, ``token_list`` and a JSON ``source``
record (model file, its size and mtime, data dir) used to tell a stale file from a valid one.
Utterances are batched by length for the forward pass but stored in the data dir's order.

Bad audio is fatal, by rule: before the model runs, every utterance's audio is checked against the
project's policy (``data.audio``: FLAC/WAV by content, 16 kHz mono, length = the listed sample
count; ``wav.scp`` commands only with ``allow_pipes``), and one DataDirError names every bad one
(``wav.scp:line``, file, reason). Skipping them instead would score a WER on other utterances than
the set's; nothing is resampled, cut to one channel or averaged.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from dinosr_espnet.atomic_files import atomic_open
from dinosr_espnet.constants import FRAME_SECONDS
from dinosr_espnet.data.audio import AudioError, read_wav_scp_value
from dinosr_espnet.data.kaldi_data import DataDir, DataDirError, check_wav_scp, raise_problems, read_table


@dataclass
class Emissions:
    """Per-utterance ``[frame, vocab]`` CTC log-probs in data-dir order."""

    utt_ids: List[str]
    log_probs: List[np.ndarray]
    token_list: List[str]
    source: Dict[str, object]

    @property
    def total_frames(self) -> int:
        return int(sum(len(x) for x in self.log_probs))

    @property
    def audio_seconds(self) -> float:
        return self.total_frames * FRAME_SECONDS


def save_emissions(path: Path, emissions: Emissions) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = len(emissions.token_list)
    stacked = (np.concatenate(emissions.log_probs, axis=0) if emissions.log_probs
               else np.zeros((0, vocab), dtype=np.float32))
    with atomic_open(path, "wb") as handle:  # a handle: np.savez would append .npz to a path
        np.savez(handle, log_probs=stacked.astype(np.float32),
                 lengths=np.array([len(x) for x in emissions.log_probs], dtype=np.int64),
                 utt_ids=np.array(emissions.utt_ids, dtype=str), token_list=np.array(emissions.token_list, dtype=str),
                 source=np.array(json.dumps(emissions.source)))


def load_emissions(path: Path) -> Emissions:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"emissions file not found: {path}")
    with np.load(path, allow_pickle=False) as archive:
        stacked, lengths = archive["log_probs"], archive["lengths"]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return Emissions(utt_ids=[str(u) for u in archive["utt_ids"]],
                         log_probs=[stacked[offsets[i]:offsets[i + 1]] for i in range(len(lengths))],
                         token_list=[str(t) for t in archive["token_list"]],
                         source=json.loads(str(archive["source"])))


def model_signature(asr_model_file: Path) -> Dict[str, object]:
    stat = Path(asr_model_file).stat()
    return {"asr_model_file": str(Path(asr_model_file).resolve()), "size": stat.st_size, "mtime": stat.st_mtime}


def load_asr_model(asr_train_config: Path, asr_model_file: Path, device: str = "cpu",
                   trust_checkpoint: bool = False):
    """An ESPnet ASR model in eval mode, with this project's encoder classes registered first.

    Built from ``config.yaml`` (``yaml.safe_load``) without reading any pre-training file, then
    given the weights of ``asr_model_file`` through ``checkpoint_io`` (tensors only unless
    ``trust_checkpoint``; every missing or unexpected key is an error: ESPnet's own
    ``build_model_from_file`` unpickles in full and ignores them). Returns ``(model, token_list)``.
    """
    import argparse

    import dinosr_espnet  # noqa: F401  (registration hook)
    from dinosr_espnet.checkpoint_io import load_checkpoint, load_state_dict_strictly, read_model_config
    from dinosr_espnet.registry import register_now

    register_now()
    from espnet2.tasks.asr import ASRTask

    for path, what in ((asr_train_config, "--asr_train_config"), (asr_model_file, "--asr_model_file")):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{what} not found: {path}")
    train_args = argparse.Namespace(**read_model_config(asr_train_config))
    encoder_conf = dict(getattr(train_args, "encoder_conf", None) or {})
    if getattr(train_args, "encoder", None) == "dinosr" and "pretrained_model" in encoder_conf:
        # a run from before config.yaml recorded pretrained_config: the architecture still comes from
        # the config.yaml beside pretrained_model, the weights (as always) from asr_model_file
        encoder_conf["load_pretrained_weights"] = False
        if "pretrained_config" in encoder_conf:
            encoder_conf.pop("pretrained_model")
    train_args.encoder_conf = encoder_conf
    model = ASRTask.build_model(train_args)
    state = load_checkpoint(asr_model_file, trust=trust_checkpoint)
    load_state_dict_strictly(model, state, asr_model_file, f"the model of {asr_train_config}")
    model.to(device).eval()
    if getattr(model, "ctc", None) is None:
        raise ValueError(f"{asr_model_file}: the model has no CTC head (ctc_weight must be > 0)")
    return model, list(train_args.token_list)


def checked_audio_lengths(data_dir: DataDir, allow_pipes: bool = False) -> List[int]:
    """Samples per utterance (data-dir order) after checking all audio; DataDirError naming every bad one."""
    problems, lengths = check_wav_scp(data_dir.path, read_table(data_dir.path / "wav.scp"), data_dir.num_samples,
                                      "header", allow_pipes=allow_pipes)
    raise_problems(problems)
    return [lengths.get(u, data_dir.num_samples.get(u, 0)) for u in data_dir.utt_ids]


def _read_utterance(data_dir: DataDir, utterance: str, allow_pipes: bool) -> np.ndarray:
    try:
        return read_wav_scp_value(data_dir.wav[utterance], allow_pipes)
    except AudioError as error:  # the file changed since it was checked
        raise DataDirError(f"{data_dir.path / 'wav.scp'}: utterance {utterance}: {error}") from None


def compute_emissions(model, token_list: List[str], data_dir: DataDir, batch_size: int = 8,
                      device: str = "cpu", source: Optional[Dict[str, object]] = None,
                      log=print, allow_pipes: bool = False) -> Emissions:
    """Batched ``model.encode`` + ``model.ctc.log_softmax`` over a data dir.

    Utterances are sorted by length so a batch pads little; results go back to data-dir order.
    """
    import torch

    utt_ids = data_dir.utt_ids
    lengths = checked_audio_lengths(data_dir, allow_pipes)
    order = sorted(range(len(utt_ids)), key=lambda i: -lengths[i])
    results: List[Optional[np.ndarray]] = [None] * len(utt_ids)
    started = time.time()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch_indices = order[start:start + batch_size]
            waveforms = [_read_utterance(data_dir, utt_ids[i], allow_pipes) for i in batch_indices]
            sample_lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.long)
            speech = torch.zeros(len(waveforms), int(sample_lengths.max()), dtype=torch.float32)
            for row, waveform in enumerate(waveforms):
                speech[row, :len(waveform)] = torch.from_numpy(waveform)
            encoder_out, encoder_lengths = model.encode(speech.to(device), sample_lengths.to(device))
            log_probs = model.ctc.log_softmax(encoder_out).float().cpu().numpy()  # [batch, frame, vocab]
            for row, index in enumerate(batch_indices):
                results[index] = np.ascontiguousarray(log_probs[row, :int(encoder_lengths[row])])
            done = min(start + batch_size, len(order))
            if done == len(order) or (start // batch_size) % 50 == 0:
                log(f"[emissions] {data_dir.name}: {done}/{len(order)} utterances ({time.time() - started:.1f} s)")
    return Emissions(utt_ids=list(utt_ids), log_probs=results, token_list=list(token_list),
                     source={**(source or {}), "data_dir": str(data_dir.path.resolve())})


def cached_emissions(path: Path, data_dir: DataDir, model_loader, asr_model_file: Path,
                     batch_size: int = 8, device="cpu", log=print, allow_pipes: bool = False) -> Emissions:
    """Load ``path`` if it was computed from this model and holds exactly this dir's ids; else compute it.

    ``model_loader()`` returns ``(model, token_list)``; it is only called when computing.
    ``device`` may be a callable, evaluated after ``model_loader()``.
    """
    signature = model_signature(asr_model_file)
    if Path(path).is_file():
        stored = load_emissions(path)
        same_model = all(stored.source.get(k) == v for k, v in signature.items())
        if same_model and stored.utt_ids == data_dir.utt_ids:
            log(f"[emissions] reusing {path}")
            return stored
        log(f"[emissions] {path} is stale (other model or utterances); recomputing")
    model, token_list = model_loader()
    device = device() if callable(device) else device
    emissions = compute_emissions(model, token_list, data_dir, batch_size, device, signature, log, allow_pipes)
    save_emissions(path, emissions)
    return emissions


def default_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "0") != "" else "cpu"
