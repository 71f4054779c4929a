"""What a model directory holds, and the one place where this package loads a checkpoint.

Two kinds of directory (docs/INTERFACES.md section 2):

- pre-trained: ``config.yaml`` with ``model: dinosr|data2vec`` and ``model_conf`` (DinoSRConfig fields),
  ``model.pth`` with ``ssl.*`` keys, as written by pre-training or ``bin.import_fairseq``;
- fine-tuned CTC: an ESPnet ASR experiment dir from ``bin.asr_train``: ``config.yaml`` with
  ``encoder: dinosr`` and ``token_list``, and a ``*.pth`` state dict (``valid.cer_ctc.best.pth``).

Loading goes through the project's existing loaders (``analysis.model_loading.load_model`` and
``decode.emissions.load_asr_model``, both ``weights_only``); ``load_pretrained`` and ``load_ctc`` are the
only two calls, so that a stricter loader can be swapped in here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

PRETRAINED = "pretrained"
CTC = "ctc"


class ModelDirError(ValueError):
    """A model directory that is missing, of the wrong kind or not exportable; the message names it."""


@dataclass(frozen=True)
class ModelDir:
    path: Path
    kind: str                  # PRETRAINED or CTC
    config: Dict[str, Any]     # the whole config.yaml
    checkpoint: Path           # the state dict that will be loaded

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"


def _read_config(config_path: Path) -> Dict[str, Any]:
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        raise ModelDirError(f"{config_path}: not valid YAML ({error})") from None
    if not isinstance(config, dict):
        raise ModelDirError(f"{config_path}: expected a mapping, got {type(config).__name__}")
    return config


def _ctc_checkpoint(model_dir: Path, checkpoint: Optional[str]) -> Path:
    if checkpoint:
        return model_dir / checkpoint
    best = sorted(model_dir.glob("*.best.pth"))
    if len(best) == 1:
        return best[0]
    if not best:
        raise ModelDirError(f"{model_dir}: no *.best.pth (ESPnet's selected model, e.g. valid.cer_ctc.best.pth); "
                            f"name the state dict with --checkpoint")
    raise ModelDirError(f"{model_dir}: several selected models {[path.name for path in best]}; "
                        f"choose one with --checkpoint")


def inspect_model_dir(model_dir: Path | str, checkpoint: Optional[str] = None) -> ModelDir:
    """Tell a pre-trained from a fine-tuned CTC model dir; ModelDirError naming the file and key otherwise."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"model dir {model_dir}: no such directory")
    config_path = model_dir / "config.yaml"
    if not config_path.is_file():
        raise ModelDirError(f"{config_path}: missing (a pre-training dir or an ESPnet ASR experiment dir has one)")
    config = _read_config(config_path)
    if "model" in config and "encoder" not in config:
        if str(config["model"]) not in ("dinosr", "data2vec"):
            raise ModelDirError(f"{config_path}: model is {config['model']!r}; only 'dinosr' and 'data2vec' "
                                f"pre-training dirs can be used")
        path = model_dir / (checkpoint or "model.pth")
        kind = PRETRAINED
    elif "encoder" in config:
        if config["encoder"] != "dinosr":
            raise ModelDirError(f"{config_path}: encoder is {config['encoder']!r}; only 'encoder: dinosr' ASR "
                                f"models can be used")
        path = _ctc_checkpoint(model_dir, checkpoint)
        kind = CTC
    else:
        raise ModelDirError(f"{config_path}: neither a pre-training config ('model: dinosr', 'model_conf') nor an "
                            f"ESPnet ASR config ('encoder: dinosr'); top-level keys: {sorted(config)[:12]}")
    if not path.is_file():
        raise ModelDirError(f"{path}: missing (the state dict of {model_dir})")
    return ModelDir(path=model_dir, kind=kind, config=config, checkpoint=path)


def load_pretrained(model_dir: ModelDir, device: str = "cpu"):
    """The ``DinoSRModel`` / ``Data2VecModel`` of a pre-training dir, in eval mode."""
    from dinosr_espnet.analysis.model_loading import load_model

    if model_dir.kind != PRETRAINED:
        raise ModelDirError(f"{model_dir.config_path}: a fine-tuned ASR model; this needs a pre-training dir "
                            f"(config.yaml with 'model: dinosr')")
    # checkpoint_io names a truncated, foreign or untrusted file in its error
    return load_model(model_dir.path, checkpoint_name=model_dir.checkpoint.name, device=device)


def load_ctc(model_dir: ModelDir, device: str = "cpu"):
    """``(ESPnet ASR model in eval mode, token list)`` of a fine-tuned CTC experiment dir."""
    from dinosr_espnet.decode.emissions import load_asr_model

    if model_dir.kind != CTC:
        raise ModelDirError(f"{model_dir.config_path}: a pre-training dir; this needs a fine-tuned ASR model")
    model, token_list = load_asr_model(model_dir.config_path, model_dir.checkpoint, device)
    return model, list(token_list)


def raw_model_conf(model_dir: ModelDir) -> Dict[str, Any]:
    """``model_conf`` of a pre-training dir exactly as written (before unknown keys are dropped)."""
    model_conf = model_dir.config.get("model_conf") or {}
    if not isinstance(model_conf, dict):
        raise ModelDirError(f"{model_dir.config_path}: model_conf must be a mapping")
    return dict(model_conf)

