"""Import the official fairseq DinoSR checkpoint as an ESPnet pre-training result.

    python -m dinosr_espnet.bin.import_fairseq dinosr.ckpt exp/pretrain_official/model.pth

writes ``model.pth`` (the ``DinoSRModel`` state dict with every key prefixed ``ssl.``, the layout of a
pre-training run of this project) and ``config.yaml`` beside it (``model: dinosr``, ``model_conf``).
Codebooks keep their running sums and counts; the teacher comes from the checkpoint's ``_ema``.

The checkpoint is read without unpickling code (``checkpoint_io``): tensors, plain containers and
the omegaconf types of fairseq's ``cfg`` (omegaconf is installed with ESPnet's hydra-core). A file
holding anything else is refused, naming it, unless ``--trust_checkpoint`` is given (unpickling can
run code from the file: only for files you trust).
"""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from dinosr_espnet.checkpoint_io import (CheckpointError, add_trust_argument, load_checkpoint,
                                         write_model_dir)
from dinosr_espnet.nets.dinosr import DinoSRModel
from dinosr_espnet.nets.fairseq_checkpoint import (check_state_against, config_from_fairseq,
                                                   fairseq_to_dinosr)


def _plain(value: Any) -> Any:
    """Nested mappings (also omegaconf DictConfig / ListConfig) -> plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(key): _plain(item) for key, item in value.items()}
    if type(value).__name__ == "ListConfig" or isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def load_fairseq_checkpoint(path: Path, trust: bool = False) -> Dict[str, Any]:
    """The fairseq checkpoint dict on CPU, through ``checkpoint_io.load_checkpoint``: tensors and the
    allow-listed omegaconf ``cfg`` types only (the official layout), everything else only with ``trust``."""
    return load_checkpoint(path, trust=trust)


def import_checkpoint(checkpoint: Path, output: Path, num_updates: Optional[int] = None,
                      trust: bool = False) -> Dict[str, Any]:
    """Convert ``checkpoint`` -> ``output`` (model.pth) + ``output.parent/config.yaml``; returns a summary."""
    import torch

    print(f"loading {checkpoint}", file=sys.stderr)
    content = load_fairseq_checkpoint(checkpoint, trust=trust)
    if not isinstance(content, dict) or "model" not in content:
        raise KeyError(f"{checkpoint}: not a fairseq checkpoint (no 'model' entry; top-level keys: "
                       f"{sorted(content) if isinstance(content, dict) else type(content).__name__})")
    model_state = content["model"]
    try:
        cfg = _plain(content.get("cfg") or {})
    except Exception as error:  # noqa: BLE001  (e.g. an omegaconf interpolation that does not resolve)
        raise CheckpointError(f"{checkpoint}: cfg cannot be read: {type(error).__name__}: {error}") from None
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
    config_path = output.parent / "config.yaml"
    document = {"model": "dinosr", "model_conf": config.to_dict(),
                "imported_from": str(checkpoint), "num_updates": num_updates}
    write_model_dir(state, output, document)
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
    add_trust_argument(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        import_checkpoint(args.checkpoint, args.output, args.num_updates, trust=args.trust_checkpoint)
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
