"""Import the official fairseq DinoSR checkpoint as an ESPnet pre-training result.

    python -m dinosr_espnet.bin.import_fairseq dinosr.ckpt exp/pretrain_official/model.pth

writes ``model.pth`` (the ``DinoSRModel`` state dict with every key prefixed ``ssl.``, the layout of a
pre-training run of this project) and ``config.yaml`` beside it (``model: dinosr``, ``model_conf``).
Codebooks keep their running sums and counts; the teacher comes from the checkpoint's ``_ema``.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import yaml

from dinosr_espnet.nets.dinosr import DinoSRModel
from dinosr_espnet.nets.fairseq_checkpoint import (check_state_against, config_from_fairseq,
                                                   fairseq_to_dinosr)


def _plain(value: Any) -> Any:
    """Nested mappings (also omegaconf DictConfig) -> plain dicts, without importing omegaconf."""
    if hasattr(value, "items"):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def load_fairseq_checkpoint(path: Path) -> Dict[str, Any]:
    """``torch.load`` a fairseq checkpoint on CPU. Its ``cfg`` is usually an omegaconf object, which the
    safe loader refuses; then the file is unpickled in full (only do this with files you trust)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (omegaconf objects in cfg)
        print(f"note: {path} holds non-tensor objects (fairseq cfg); loading it with weights_only=False",
              file=sys.stderr)
        return torch.load(path, map_location="cpu", weights_only=False)


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same directory, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def import_checkpoint(checkpoint: Path, output: Path, num_updates: Optional[int] = None) -> Dict[str, Any]:
    """Convert ``checkpoint`` -> ``output`` (model.pth) + ``output.parent/config.yaml``; returns a summary."""
    print(f"loading {checkpoint}", file=sys.stderr)
    content = load_fairseq_checkpoint(checkpoint)
    if not isinstance(content, dict) or "model" not in content:
        raise KeyError(f"{checkpoint}: not a fairseq checkpoint (no 'model' entry; top-level keys: "
                       f"{sorted(content) if isinstance(content, dict) else type(content).__name__})")
    model_state = content["model"]
    cfg = _plain(content.get("cfg") or {})
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if isinstance(model_cfg, dict) and model_cfg.get("_name") not in (None, "dinosr"):
        raise ValueError(f"{checkpoint}: cfg.model._name is {model_cfg.get('_name')!r}, expected 'dinosr'")
    if num_updates is None:
        history: List[Dict[str, Any]] = content.get("optimizer_history") or []
        num_updates = int(history[-1].get("num_updates", 0)) if history else 0
    state = fairseq_to_dinosr(model_state, num_updates=num_updates)  # names unknown/missing keys first
    notes: List[str] = []
    config = config_from_fairseq(model_cfg, model_state, task_config=cfg.get("task") if isinstance(cfg, dict) else None,
                                 num_updates=num_updates, notes=notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    with torch.device("meta"):
        expected = DinoSRModel(config).state_dict()
    check_state_against(state, expected, str(checkpoint))
    state = {f"ssl.{key}": value.to(expected[key].dtype).contiguous() for key, value in state.items()}
    atomic_write(output, lambda temporary: torch.save(state, temporary))
    config_path = output.parent / "config.yaml"
    document = {"model": "dinosr", "model_conf": config.to_dict(),
                "imported_from": str(checkpoint), "num_updates": num_updates}

    def write_yaml(temporary: str) -> None:
        with open(temporary, "w") as stream:
            yaml.safe_dump(document, stream, sort_keys=False)

    atomic_write(config_path, write_yaml)
    summary = {"tensors": len(state), "parameters": sum(v.numel() for v in state.values()),
               "num_updates": num_updates, "config": str(config_path), "model": str(output)}
    print(f"wrote {output} ({summary['tensors']} tensors) and {config_path}", file=sys.stderr)
    return summary


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dinosr_espnet.bin.import_fairseq", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="official fairseq checkpoint (dinosr.ckpt)")
    parser.add_argument("output", type=Path, help="model.pth to write (config.yaml goes beside it)")
    parser.add_argument("--num_updates", type=int, default=None,
                        help="update count to store (default: the checkpoint's optimizer_history, else 0)")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        import_checkpoint(args.checkpoint, args.output, args.num_updates)
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
