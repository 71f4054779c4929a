"""Two optimizer steps of the tiny DinoSR through ESPnet's ``train_one_epoch``, three ways.

Helpers for ``test_pretrain_distributed.py``. Every randomness of a step is removed or made a
function of the data: dropout and LayerDrop are 0, and the span mask of a row is drawn from a
generator seeded by the row's samples (``install_content_masks``), so the same utterance gets the
same mask whichever micro-batch, rank or batch it lands in. Rows get 1 to 4 spans, so micro-batches
differ in masked frames and an equal weighting of micro-batches would show.

Run as a script under ``torch.distributed.run`` (2 processes, gloo): rank r trains on micro-batches
``r, r + 2`` of ``utterance_batches()`` without accumulation and saves ``final_state`` to
``<output_dir>/rank<r>.pth``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]

NO_RANDOMNESS = ["dropout=0.0", "attention_dropout=0.0", "activation_dropout=0.0",
                 "encoder_layerdrop=0.0", "dropout_input=0.0"]
SAMPLES = 16000  # 49 frames of the tiny CNN


def build(accum_grad: int):
    """(task, args, model, optimizers) from conf/pretrain_dinosr_tiny.yaml, seed 0, fp32."""
    import dinosr_espnet  # noqa: F401  (registration hook before ESPnet)
    from dinosr_espnet.tasks.dinosr import DinoSRTask

    model_conf = dict(item.split("=") for item in NO_RANDOMNESS)
    args = DinoSRTask.get_parser().parse_args(
        ["--config", str(REPO_ROOT / "conf/pretrain_dinosr_tiny.yaml"), "--output_dir", "unused",
         "--accum_grad", str(accum_grad),
         *[f"--model_conf={key}={value}" for key, value in model_conf.items()]])
    torch.manual_seed(0)
    model = DinoSRTask.build_model(args)
    optimizers = DinoSRTask.build_optimizers(args, model)
    return DinoSRTask, args, model, optimizers


def utterance_batches() -> List[Tuple[List[str], Dict[str, torch.Tensor]]]:
    """Four micro-batches of two standardised utterances of ``SAMPLES`` samples each."""
    generator = torch.Generator().manual_seed(1234)
    batches = []
    for index in range(4):
        speech = torch.randn(2, SAMPLES, generator=generator, dtype=torch.float64)
        speech = ((speech - speech.mean(dim=1, keepdim=True)) / speech.std(dim=1, keepdim=True)).float()
        batches.append(([f"b{index}u0", f"b{index}u1"],
                        {"speech": speech, "speech_lengths": torch.full((2,), SAMPLES, dtype=torch.long)}))
    return batches


def merge(batches: Sequence[Tuple[List[str], Dict[str, torch.Tensor]]]):
    """One batch holding the rows of ``batches``."""
    return ([u for ids, _ in batches for u in ids],
            {key: torch.cat([batch[key] for _, batch in batches]) for key in ("speech", "speech_lengths")})


def content_mask(row: torch.Tensor, frames: int, span: int = 10) -> torch.Tensor:
    """``[frames]`` span mask seeded by the samples of ``row``: 1 to 4 spans of ``span`` frames."""
    seed = int(row.double().abs().sum().item() * 1000) % (2 ** 31)
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(frames, dtype=torch.bool)
    for start in torch.randint(frames - span, (1 + seed % 4,), generator=generator).tolist():
        mask[start:start + span] = True
    return mask


def install_content_masks(pretrain_model) -> List[int]:
    """Masks of ``pretrain_model.ssl`` from ``content_mask``; returns the list that receives the
    number of masked frames of every forward."""
    ssl = pretrain_model.ssl
    current = {}
    masked_frames: List[int] = []
    ssl.register_forward_pre_hook(lambda module, inputs: current.__setitem__("speech", inputs[0]))

    def sample_time_mask(batch, frames, padding_mask):
        mask = torch.stack([content_mask(row, frames) for row in current["speech"]])
        masked_frames.append(int(mask.sum()))
        return mask

    ssl.sample_time_mask = sample_time_mask
    return masked_frames


def train(task, args, model, optimizers, batches, distributed_option=None) -> None:
    """ESPnet's ``train_one_epoch`` over ``batches`` (``model`` may be DDP-wrapped)."""
    from espnet2.train.distributed_utils import DistributedOption
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    reporter.set_epoch(1)
    with reporter.observe("train") as sub_reporter:
        task.trainer.train_one_epoch(
            model=model, iterator=iter(batches), optimizers=optimizers, schedulers=[None], scaler=None,
            reporter=sub_reporter, summary_writer=None, options=task.trainer.build_options(args),
            distributed_option=distributed_option or DistributedOption(distributed=False, ngpu=0))


def final_state(model, optimizer) -> Dict[str, torch.Tensor]:
    """Model state (``ssl.*``: student, teacher, codebooks, counter) + the optimizer's state tensors."""
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    for index, parameter_state in optimizer.state_dict()["state"].items():
        for name, value in parameter_state.items():
            state[f"optimizer.{index}.{name}"] = torch.as_tensor(value).detach().clone()
    return state


def _distributed_main(output_dir: Path) -> None:
    from espnet2.train.distributed_utils import DistributedOption

    torch.distributed.init_process_group("gloo")
    rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    task, args, model, optimizers = build(accum_grad=1)
    masked_frames = install_content_masks(model)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=args.unused_parameters)
    own = utterance_batches()[rank::world_size]
    train(task, args, ddp_model, optimizers, own,
          DistributedOption(distributed=True, ngpu=0, dist_rank=rank, dist_world_size=world_size))
    torch.save({"state": final_state(model, optimizers[0]), "masked_frames": masked_frames},
               output_dir / f"rank{rank}.pth")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir", type=Path)
    _distributed_main(parser.parse_args(sys.argv[1:]).output_dir)
