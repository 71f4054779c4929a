import os

import torch
import torch.multiprocessing as multiprocessing
from torch import distributed as dist

from dinosr_espnet.nets.codebook import OnlineCodebooks


def test_initial_codebook_is_instance_normalised_over_codewords_with_unit_counts():
    torch.manual_seed(0)
    codebooks = OnlineCodebooks(3, 64, 8)
    assert codebooks.sums.shape == (3, 64, 8) and codebooks.sums.dtype == torch.float32
    assert torch.equal(codebooks.counts, torch.ones(3, 64))
    over_codewords = codebooks.sums.transpose(1, 2)  # [K, D, V]
    assert over_codewords.mean(dim=-1).abs().max() < 1e-5
    assert (over_codewords.var(dim=-1, unbiased=False) - 1).abs().max() < 1e-3
    assert torch.equal(codebooks.codewords(), codebooks.sums)


def test_codebooks_are_checkpointed_buffers_not_parameters():
    codebooks = OnlineCodebooks(2, 4, 3)
    assert list(codebooks.parameters()) == []
    assert set(codebooks.state_dict()) == {"sums", "counts"}


def test_assignment_is_nearest_codeword_by_squared_l2():
    torch.manual_seed(1)
    codebooks = OnlineCodebooks(2, 16, 5)
    codebooks.counts.uniform_(0.5, 3.0)  # codewords are sums / counts, not sums
    targets = torch.randn(2, 50, 5)
    expected = torch.cdist(targets, codebooks.codewords()).argmin(dim=-1)
    assert torch.equal(codebooks.assign(targets), expected)


def test_assignment_ties_go_to_the_first_codeword():
    codebooks = OnlineCodebooks(1, 4, 2)
    codebooks.sums.copy_(torch.tensor([[[5.0, 5.0], [1.0, 0.0], [1.0, 0.0], [0.0, 9.0]]]))
    assert codebooks.assign(torch.tensor([[[1.0, 0.0], [1.0, 0.1]]])).tolist() == [[1, 1]]


def test_ema_update_equals_the_formula_on_a_hand_made_batch():
    codebooks = OnlineCodebooks(1, 3, 2, decay=0.9)
    codebooks.sums.copy_(torch.tensor([[[0.0, 0.0], [10.0, 10.0], [-10.0, 4.0]]]))
    codebooks.counts.copy_(torch.tensor([[1.0, 2.0, 4.0]]))
    targets = torch.tensor([[[0.1, 0.2], [0.3, -0.1], [5.1, 4.9]]])  # codewords: (0,0) (5,5) (-2.5,1)
    indices = codebooks.assign(targets)
    assert indices.tolist() == [[0, 0, 1]]
    memory, count = codebooks.batch_statistics(targets, indices)
    codebooks.update(memory, count)
    assert torch.allclose(codebooks.sums[0, 0], 0.9 * torch.zeros(2) + 0.1 * torch.tensor([0.4, 0.1]))
    assert torch.allclose(codebooks.sums[0, 1], 0.9 * torch.tensor([10.0, 10.0]) + 0.1 * torch.tensor([5.1, 4.9]))
    assert torch.allclose(codebooks.counts[0], torch.tensor([0.9 * 1 + 0.1 * 2, 0.9 * 2 + 0.1 * 1, 4.0]))


def test_codewords_with_zero_count_do_not_move():
    torch.manual_seed(2)
    codebooks = OnlineCodebooks(2, 32, 4)
    before_sums, before_counts = codebooks.sums.clone(), codebooks.counts.clone()
    targets = torch.randn(2, 5, 4)
    indices = codebooks.assign(targets)
    codebooks.update(*codebooks.batch_statistics(targets, indices))
    for k in range(2):
        unused = torch.ones(32, dtype=torch.bool)
        unused[indices[k]] = False
        assert unused.any() and (~unused).any()
        assert torch.equal(codebooks.sums[k, unused], before_sums[k, unused])
        assert torch.equal(codebooks.counts[k, unused], before_counts[k, unused])
        assert not torch.equal(codebooks.sums[k, ~unused], before_sums[k, ~unused])


def test_codebooks_stay_fp32_under_autocast():
    torch.manual_seed(3)
    codebooks = OnlineCodebooks(2, 8, 4)
    reference = OnlineCodebooks(2, 8, 4)
    reference.load_state_dict(codebooks.state_dict())
    targets = torch.randn(2, 20, 4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        indices = codebooks.assign(targets.bfloat16())
        codebooks.update(*codebooks.batch_statistics(targets, indices))
    reference_indices = reference.assign(targets.bfloat16().float())
    reference.update(*reference.batch_statistics(targets, reference_indices))
    assert torch.equal(indices, reference_indices)
    assert codebooks.sums.dtype == torch.float32 and codebooks.counts.dtype == torch.float32
    assert torch.equal(codebooks.sums, reference.sums)


def _worker(rank: int, world_size: int, init_file: str, targets: torch.Tensor, state: dict, out_dir: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        codebooks = OnlineCodebooks(2, 8, 3)
        codebooks.load_state_dict(state)
        local = targets.chunk(world_size, dim=1)[rank]
        for _ in range(2):
            indices = codebooks.assign(local)
            codebooks.update(*codebooks.batch_statistics(local, indices))
        torch.save(codebooks.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_processes_end_with_the_codebooks_of_one_process_on_the_whole_batch(tmp_path):
    torch.manual_seed(4)
    codebooks = OnlineCodebooks(2, 8, 3)
    state = {name: tensor.clone() for name, tensor in codebooks.state_dict().items()}
    targets = torch.randn(2, 40, 3)
    # Rank 1 runs in a spawned process, rank 0 in this one (one interpreter start instead of two).
    arguments = (2, str(tmp_path / "init"), targets, state, str(tmp_path))
    child = multiprocessing.get_context("spawn").Process(target=_worker, args=(1, *arguments))
    child.start()
    _worker(0, *arguments)
    child.join(timeout=120)
    assert child.exitcode == 0
    for _ in range(2):
        indices = codebooks.assign(targets)
        codebooks.update(*codebooks.batch_statistics(targets, indices))
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert torch.equal(rank0["sums"], rank1["sums"]) and torch.equal(rank0["counts"], rank1["counts"])
    assert torch.allclose(rank0["sums"], codebooks.sums, atol=1e-6)
    assert torch.allclose(rank0["counts"], codebooks.counts, atol=1e-6)
    assert not torch.allclose(rank0["sums"], state["sums"])
