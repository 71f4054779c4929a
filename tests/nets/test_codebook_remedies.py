"""Opt-in dead-codeword remedies of the online codebooks (re-seeding, init from targets); off = official."""
import os

import pytest
import torch
import torch.multiprocessing as multiprocessing
from torch import distributed as dist

from dinosr_espnet.nets.codebook import OnlineCodebooks
from dinosr_espnet.nets.config import dinosr_tiny
from dinosr_espnet.nets.dinosr import DinoSRModel

FAR = 100.0  # a codeword this far from every N(0, 1) target is never nearest


def _codebooks_with_a_far_codeword(**options):
    """1 codebook, 4 codewords in 2-D: three near the origin, codeword 3 at (FAR, FAR)."""
    codebooks = OnlineCodebooks(1, 4, 2, decay=0.9, **options)
    codebooks.sums.copy_(torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [FAR, FAR]]]))
    return codebooks


def _step(codebooks, targets):
    """One training step as DinoSRModel does it: assign, EMA update, then the re-seed hook."""
    indices = codebooks.assign(targets)
    memory, count = codebooks.batch_statistics(targets, indices)
    codebooks.update(memory, count)
    return codebooks.reseed_unused_(count, targets), indices


def _is_a_row_of(vector, rows):
    return bool((rows == vector).all(dim=-1).any())


def test_with_the_remedy_off_a_never_nearest_codeword_never_moves():
    """Official behaviour (spec 1.3): only codewords with count > 0 take the EMA step."""
    torch.manual_seed(0)
    codebooks = _codebooks_with_a_far_codeword()
    assert set(codebooks.state_dict()) == {"sums", "counts"}   # no remedy state in the official layout
    for _ in range(20):
        reseeded, indices = _step(codebooks, torch.randn(1, 30, 2))
        assert reseeded == 0 and not (indices == 3).any()
    assert torch.equal(codebooks.sums[0, 3], torch.tensor([FAR, FAR]))
    assert codebooks.counts[0, 3] == 1.0


def test_a_codeword_never_nearest_is_reseeded_after_n_updates_to_one_of_the_targets():
    torch.manual_seed(1)
    codebooks = _codebooks_with_a_far_codeword(reseed_after=3)
    for update in (1, 2):
        reseeded, indices = _step(codebooks, torch.randn(1, 30, 2))
        assert reseeded == 0 and not (indices == 3).any()
        assert torch.equal(codebooks.sums[0, 3], torch.tensor([FAR, FAR])), update
        assert codebooks.updates_unused[0, 3] == update
    targets = torch.randn(1, 30, 2)
    reseeded, _ = _step(codebooks, targets)
    assert reseeded == 1
    assert _is_a_row_of(codebooks.codewords()[0, 3], targets[0])   # sum = a target row, count = 1
    assert codebooks.counts[0, 3] == 1.0 and codebooks.updates_unused[0, 3] == 0
    # the codewords that were used keep their EMA values and counters
    assert codebooks.updates_unused[0, :3].tolist() == [0, 0, 0]


def test_used_codewords_are_never_reseeded_and_their_counter_restarts():
    codebooks = OnlineCodebooks(1, 2, 1, reseed_after=2)
    codebooks.sums.copy_(torch.tensor([[[0.0], [10.0]]]))
    near_zero, near_ten = torch.tensor([[[0.1]]]), torch.tensor([[[9.9]]])
    assert _step(codebooks, near_zero)[0] == 0          # codeword 1 unused once
    assert _step(codebooks, near_ten)[0] == 0           # used: counter of 1 back to 0, codeword 0 unused once
    assert codebooks.updates_unused.tolist() == [[1, 0]]
    assert _step(codebooks, near_ten)[0] == 1           # codeword 0 unused twice -> re-seeded to 9.9
    assert torch.allclose(codebooks.codewords()[0, 0], torch.tensor([9.9]))


def test_reseeding_is_deterministic_under_a_seed_and_uses_distinct_rows():
    def run(seed):
        torch.manual_seed(seed)
        codebooks = OnlineCodebooks(2, 16, 3, reseed_after=1)
        codebooks.sums[:, 8:] += FAR                     # half of each codebook is dead from the start
        targets = torch.randn(2, 40, 3)
        reseeded, _ = _step(codebooks, targets)
        return reseeded, codebooks.sums.clone(), targets

    first, second, other = run(5), run(5), run(6)
    assert first[0] >= 16 and torch.equal(first[1], second[1])   # 16 far ones + near ones unused now
    assert not torch.equal(first[1], other[1])
    for index in range(2):
        new = first[1][index, 8:]
        assert all(_is_a_row_of(row, first[2][index]) for row in new)
        assert len({tuple(row.tolist()) for row in new}) == 8   # 8 distinct targets, not one row 8 times


def test_init_from_targets_sets_distinct_target_rows_once():
    torch.manual_seed(2)
    codebooks = OnlineCodebooks(2, 8, 3, init_from_targets=True)
    targets = torch.randn(2, 20, 3)
    assert codebooks.initialize_from_targets_(targets) is True
    for index in range(2):
        codewords = codebooks.codewords()[index]
        assert all(_is_a_row_of(row, targets[index]) for row in codewords)
        assert len({tuple(row.tolist()) for row in codewords}) == 8
    assert torch.equal(codebooks.counts, torch.ones(2, 8))
    after_first = codebooks.sums.clone()
    assert codebooks.initialize_from_targets_(torch.randn(2, 20, 3)) is False   # only the first batch
    assert torch.equal(codebooks.sums, after_first)
    # the flag is checkpointed: a resumed run does not initialise again
    resumed = OnlineCodebooks(2, 8, 3, init_from_targets=True)
    resumed.load_state_dict(codebooks.state_dict())
    assert resumed.initialize_from_targets_(torch.randn(2, 20, 3)) is False
    assert torch.equal(resumed.sums, after_first)


def test_remedies_are_off_by_default_and_validated():
    config = dinosr_tiny()
    assert config.codebook_reseed_after == 0 and config.codebook_init_from_targets is False
    model = DinoSRModel(config)
    assert set(model.codebooks.state_dict()) == {"sums", "counts"}
    with pytest.raises(ValueError, match="codebook_reseed_after"):
        dinosr_tiny(codebook_reseed_after=-1)


def test_model_reseeds_in_training_only_once_per_optimizer_step_and_logs_how_many():
    torch.manual_seed(3)
    model = DinoSRModel(dinosr_tiny(codebook_reseed_after=1, codebook_size=64))
    waveform, lengths = torch.randn(2, 8000), torch.tensor([8000, 8000])
    model.eval()
    before = model.codebooks.sums.clone()
    output = model(waveform, lengths)
    assert output.stats["reseeded_codewords"] == 0.0 and torch.equal(model.codebooks.sums, before)
    model.train()
    model(waveform, lengths)
    # the codebooks (and the remedy) move at the optimizer step, not in the forward
    assert torch.equal(model.codebooks.sums, before) and model.last_reseeded == 0
    model.on_optimizer_step()
    # 64 codewords, few masked frames per layer: some are unused after one update and get re-seeded
    assert model.last_reseeded > 0
    assert int((model.codebooks.updates_unused == 0).sum()) == model.codebooks.updates_unused.numel()
    output = model(waveform, lengths)   # the next forward logs the count of the step before it
    assert output.stats["reseeded_codewords"] == float(model.last_reseeded) > 0


def _worker(rank, world_size, init_file, targets, state, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(100 + rank)   # different RNG per rank: only rank 0's draw may count
        codebooks = OnlineCodebooks(2, 8, 3, reseed_after=1)
        codebooks.load_state_dict(state)
        local = targets.chunk(world_size, dim=1)[rank]
        indices = codebooks.assign(local)
        memory, count = codebooks.batch_statistics(local, indices)
        codebooks.update(memory, count)
        reseeded = codebooks.reseed_unused_(count, local)
        torch.save({"state": codebooks.state_dict(), "reseeded": reseeded}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_processes_reseed_to_the_same_rank_zero_targets(tmp_path):
    torch.manual_seed(4)
    codebooks = OnlineCodebooks(2, 8, 3, reseed_after=1)
    codebooks.sums[:, 4:] += FAR
    state = {name: tensor.clone() for name, tensor in codebooks.state_dict().items()}
    targets = torch.randn(2, 40, 3)
    arguments = (2, str(tmp_path / "init"), targets, state, str(tmp_path))
    child = multiprocessing.get_context("spawn").Process(target=_worker, args=(1, *arguments))
    child.start()
    _worker(0, *arguments)
    child.join(timeout=120)
    assert child.exitcode == 0
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0["reseeded"] == rank1["reseeded"] >= 8
    for name in ("sums", "counts", "updates_unused"):
        assert torch.equal(rank0["state"][name], rank1["state"][name]), name
    rank0_targets = targets.chunk(2, dim=1)[0]
    for index in range(2):
        for row in rank0["state"]["sums"][index, 4:]:
            assert _is_a_row_of(row, rank0_targets[index])
