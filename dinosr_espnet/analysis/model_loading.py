"""Load a pre-trained DinoSR model from ``exp/pretrain_<tag>/{model.pth,config.yaml}`` (INTERFACES.md sec. 2).

Both files are read through ``checkpoint_io`` (tensors only unless ``trust_checkpoint``; the weights
must match the architecture key for key)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from dinosr_espnet import checkpoint_io

SSL_PREFIX = "ssl."


def read_model_config(config_path: Path) -> Tuple[str, Dict[str, Any]]:
    """(``model`` name, ``model_conf`` dict) of an ESPnet pre-training ``config.yaml``."""
    config = checkpoint_io.read_model_config(config_path)
    if "model" not in config:
        raise ValueError(f"{config_path}: no 'model' key (expected 'model: dinosr')")
    return str(config["model"]), dict(config.get("model_conf") or {})


def build_model(model_name: str, model_conf: Dict[str, Any], config_path: Path) -> nn.Module:
    """Instantiate the SSL model named in config.yaml from the DinoSRConfig fields of ``model_conf``."""
    from dinosr_espnet import nets
    from dinosr_espnet.nets import DinoSRConfig

    models = dict(getattr(nets, "SSL_MODELS", {}))
    if "dinosr" not in models:  # before nets/__init__.py re-exports SSL_MODELS
        from dinosr_espnet.nets.data2vec import Data2VecModel
        from dinosr_espnet.nets.dinosr import DinoSRModel
        models.update(dinosr=DinoSRModel, data2vec=Data2VecModel)
    if model_name not in models:
        raise ValueError(f"{config_path}: model '{model_name}' is not one of {sorted(models)}")
    # ESPnet may add wrapper options to model_conf; keep the DinoSRConfig fields only.
    known = {item.name for item in fields(DinoSRConfig)}
    values = {key: value for key, value in model_conf.items() if key in known}
    # eager: an analysis sees each utterance length once, so compiling (compile: true in training) cannot pay
    values["compile"] = False
    config = DinoSRConfig.from_dict(values)
    return models[model_name](config)


def load_model(model_dir: str | Path, random_init: bool = False, seed: int = 0,
               checkpoint_name: str = "model.pth", device: Optional[str] = None,
               trust_checkpoint: bool = False) -> nn.Module:
    """The SSL model (``DinoSRModel``; ``Data2VecModel`` gives k-means units only) of ``model_dir``; ``random_init`` builds the same architecture without loading
    weights (seeded), the baseline the trained model's units are compared with."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.yaml"
    model_name, model_conf = read_model_config(config_path)
    torch.manual_seed(seed)
    model = build_model(model_name, model_conf, config_path)
    if not random_init:
        checkpoint_path = model_dir / checkpoint_name
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"{checkpoint_path}: no such file (use --random_init to analyse an untrained model)")
        state = checkpoint_io.load_checkpoint(checkpoint_path, trust=trust_checkpoint)
        state = state.get("model", state) if isinstance(state, dict) and "model" in state else state
        if not isinstance(state, dict):
            raise checkpoint_io.CheckpointError(f"{checkpoint_path}: expected a state dict, got {type(state).__name__}")
        ssl_state = checkpoint_io.prefixed(state, SSL_PREFIX)
        if not ssl_state:
            raise checkpoint_io.CheckpointError(
                f"{checkpoint_path}: no '{SSL_PREFIX}*' keys (expected an ESPnet pre-training state dict; "
                f"key prefixes found: {checkpoint_io.key_prefixes(state)})")
        checkpoint_io.load_state_dict_strictly(model, ssl_state, checkpoint_path,
                                               f"the architecture of {config_path} (keys relative to '{SSL_PREFIX}')")
    if device is not None:
        model = model.to(device)
    return model.eval()
