"""Stage 6: emissions once per data dir, Viterbi and lexicon + n-gram decoding, weight search, scoring.

Layout under ``output_dir``::

    <set>/emissions.npz                         CTC log-probs, data-dir order
    <set>/viterbi/{text,token,ref.trn,hyp.trn,score.json}
    <set>/4gram/{text,ref.trn,hyp.trn,score.json[,nbest]}
    lm_weight_search.tsv, lm_weight_search.md, best_setting.json

A ``score.json`` records the setting and emissions it came from; a re-run skips a (set, mode)
whose ``score.json`` matches, and redoes it otherwise.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from dinosr_espnet.atomic_files import atomic_write_text
from dinosr_espnet.data.kaldi_data import DataDir, read_data_dir
from dinosr_espnet.decode.decode_config import DecodeConfig
from dinosr_espnet.decode.emissions import Emissions, cached_emissions
from dinosr_espnet.decode.greedy import greedy_decode_all
from dinosr_espnet.decode.lexicon_decoder import BeamSettings, LexiconBeamDecoder, decode_all
from dinosr_espnet.decode.scoring import score_set
from dinosr_espnet.decode.search import search_weights
from dinosr_espnet.decode.tokens import CtcTokens, ctc_tokens


def write_text(path: Path, utt_ids: Sequence[str], texts: Sequence[str]) -> None:
    """Kaldi ``text``: ``<utt> <words>`` in the given order (an empty hypothesis leaves just the id)."""
    atomic_write_text(path, "".join(f"{utt} {text}".rstrip() + "\n" for utt, text in zip(utt_ids, texts)))


def _is_done(mode_dir: Path, record: dict) -> bool:
    score_file = mode_dir / "score.json"
    if not score_file.is_file() or not (mode_dir / "text").is_file():
        return False
    stored = json.loads(score_file.read_text(encoding="utf-8"))
    return all(stored.get(k) == v for k, v in record.items())


def _finish_mode(mode_dir: Path, data_dir: DataDir, texts: List[str], record: dict, log) -> Optional[dict]:
    write_text(mode_dir / "text", data_dir.utt_ids, texts)
    if data_dir.text is None:
        atomic_write_text(mode_dir / "score.json", json.dumps({**record, "wer": None, "cer": None}, indent=2) + "\n")
        log(f"[decode] {data_dir.name}/{mode_dir.name}: no reference text, not scored")
        return None
    summary = score_set(mode_dir, {u: data_dir.text[u] for u in data_dir.utt_ids},
                        dict(zip(data_dir.utt_ids, texts)), data_dir.utt2spk, extra=record)
    log(f"[decode] {data_dir.name}/{mode_dir.name}: WER {summary['wer']:.2f}  CER {summary['cer']:.2f}")
    return summary


def decode_viterbi(emissions: Emissions, tokens: CtcTokens, data_dir: DataDir, mode_dir: Path, log=print) -> None:
    record = {"mode": "viterbi", "emissions": emissions.source}
    if _is_done(mode_dir, record):
        log(f"[decode] {data_dir.name}/viterbi is up to date")
        return
    mode_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    hypotheses = greedy_decode_all(emissions.log_probs, tokens)
    seconds = time.time() - started
    write_text(mode_dir / "token", data_dir.utt_ids,
               [" ".join(tokens.tokens[i] for i in h.token_ids) for h in hypotheses])
    _finish_mode(mode_dir, data_dir, [h.text for h in hypotheses],
                 {**record, "decode_seconds": round(seconds, 3),
                  "real_time_factor": round(seconds / max(emissions.audio_seconds, 1e-9), 6)}, log)


def decode_lexicon(emissions: Emissions, decoder: LexiconBeamDecoder, settings: BeamSettings, data_dir: DataDir,
                   mode_dir: Path, log=print, lm_record: Optional[dict] = None, num_workers: int = 1) -> None:
    record = {"mode": mode_dir.name, "setting": settings.to_dict(), "emissions": emissions.source,
              "lm": lm_record or {}}
    if _is_done(mode_dir, record):
        log(f"[decode] {data_dir.name}/{mode_dir.name} is up to date")
        return
    mode_dir.mkdir(parents=True, exist_ok=True)
    log(f"[decode] {data_dir.name}/{mode_dir.name}: beam {settings.beam}, lm_weight {settings.lm_weight:g}, "
        f"word_score {settings.word_score:g}, {len(emissions.utt_ids)} utterances")
    started = time.time()
    hypotheses = decode_all(emissions.log_probs, decoder, settings, progress=f"[decode] {data_dir.name}",
                            num_workers=num_workers)
    seconds = time.time() - started
    if settings.nbest > 1:
        lines = [f"{utt}\t{rank}\t{h.score:.4f}\t{h.text}\n"
                 for utt, nbest in zip(data_dir.utt_ids, hypotheses) for rank, h in enumerate(nbest, start=1)]
        atomic_write_text(mode_dir / "nbest", "".join(lines))
    _finish_mode(mode_dir, data_dir, [h[0].text for h in hypotheses],
                 {**record, "decode_seconds": round(seconds, 3),
                  "real_time_factor": round(seconds / max(emissions.audio_seconds, 1e-9), 6)}, log)


def _file_record(path: Path) -> dict:
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime": stat.st_mtime}


def token_list_from_train_config(asr_train_config: Path) -> List[str]:
    import yaml

    path = Path(asr_train_config)
    if not path.is_file():
        raise FileNotFoundError(f"--asr_train_config not found: {path}")
    token_list = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("token_list")
    if token_list is None:
        raise ValueError(f"{path}: no token_list key")
    return token_list


def run_decoding(asr_train_config: Path, asr_model_file: Path, output_dir: Path, test_sets: Sequence[Path],
                 config: DecodeConfig, tune_set: Optional[Path] = None, lexicon: Optional[Path] = None,
                 lm: Optional[Path] = None, lm_mode: str = "4gram", device: str = "cpu",
                 model_loader: Optional[Callable] = None, log=print,
                 trust_checkpoint: bool = False, allow_wav_scp_pipes: bool = False) -> Dict[str, Path]:
    """Everything stage 6 does; returns ``{set name: set output dir}``.

    ``trust_checkpoint``: unpickle ``asr_model_file`` in full (``--trust_checkpoint``), not only tensors.
    Bad audio in any set is fatal before anything is decoded (``emissions``: every bad utterance named).
    """
    if (lexicon is None) != (lm is None):
        raise ValueError("give both --lexicon and --lm for LM decoding, or neither for Viterbi only")
    for path, what in ((lexicon, "--lexicon"), (lm, "--lm")):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{what} not found: {path} (stage 5, bin/build_lm.py, writes it)")
    tokens = ctc_tokens(token_list_from_train_config(asr_train_config), config.word_boundary)
    output_dir = Path(output_dir)
    data_dirs: Dict[str, DataDir] = {}
    for path in ([tune_set] if tune_set else []) + list(test_sets):
        data_dir = read_data_dir(path)
        if data_dir.name in data_dirs and data_dirs[data_dir.name].path.resolve() != data_dir.path.resolve():
            raise ValueError(f"two sets named {data_dir.name!r}: {data_dirs[data_dir.name].path} and {path}")
        data_dirs[data_dir.name] = data_dir
    loaded: Dict[str, object] = {}

    def load_model():
        if "model" not in loaded:
            from dinosr_espnet.decode.emissions import default_device, load_asr_model

            loaded["device"] = default_device(device)  # imports torch: only when a forward pass is needed
            if model_loader is not None:
                loaded["model"] = model_loader(asr_train_config, asr_model_file, loaded["device"])
            else:
                loaded["model"] = load_asr_model(asr_train_config, asr_model_file, loaded["device"],
                                                 trust_checkpoint=trust_checkpoint)
        return loaded["model"]

    emissions: Dict[str, Emissions] = {}
    for name, data_dir in data_dirs.items():
        emissions[name] = cached_emissions(output_dir / name / "emissions.npz", data_dir, load_model, asr_model_file,
                                           config.emission_batch_size, lambda: loaded["device"], log,
                                           allow_wav_scp_pipes)
        if emissions[name].token_list != tokens.tokens:
            raise ValueError(f"{output_dir / name / 'emissions.npz'}: token list differs from {asr_train_config}")
    test_names = [read_data_dir(p).name for p in test_sets]
    for name in test_names:
        decode_viterbi(emissions[name], tokens, data_dirs[name], output_dir / name / "viterbi", log)
    if lexicon is None:
        return {name: output_dir / name for name in test_names}

    decoder = LexiconBeamDecoder(tokens, lexicon, lm)
    log(f"[decode] lexicon {lexicon}: {decoder.num_words} words; LM {lm}")
    base = config.beam
    best = base.with_weights(*(config.search.default or (base.lm_weight, base.word_score)))
    if tune_set is not None and config.search.budget > 0:
        tune = read_data_dir(tune_set)
        if tune.text is None:
            raise ValueError(f"--tune_set {tune_set} has no text file to score against")
        best, _ = search_weights(decoder, emissions[tune.name].log_probs, [tune.text[u] for u in tune.utt_ids],
                                 replace(base, beam=config.tune_beam, nbest=1),
                                 config.search, output_dir / "lm_weight_search.tsv", tune.name, log,
                                 source={"emissions": emissions[tune.name].source, "lexicon": _file_record(lexicon),
                                         "lm": _file_record(lm), "settings": replace(base, beam=config.tune_beam,
                                                                                     nbest=1).to_dict()},
                                 num_workers=config.num_workers)
    final = replace(best, beam=config.final_beam, nbest=base.nbest)
    atomic_write_text(output_dir / "best_setting.json", json.dumps(final.to_dict(), indent=2) + "\n")
    log(f"[decode] best setting: lm_weight {final.lm_weight:g}, word_score {final.word_score:g}; final beam {final.beam}")
    for name in test_names:
        decode_lexicon(emissions[name], decoder, final, data_dirs[name], output_dir / name / lm_mode, log,
                       lm_record={"lexicon": _file_record(lexicon), "lm": _file_record(lm)},
                       num_workers=config.num_workers)
    return {name: output_dir / name for name in test_names}
