"""SSLPretrainModel: ESPnet's weight is the number of masked frames; a skipped step leaves no trace."""
import math

import torch

import accumulation_fixtures as fixtures


def test_weight_is_the_number_of_masked_frames_and_stats_are_their_mean():
    task, args, model, _ = fixtures.build(accum_grad=1)
    mask = torch.zeros(2, model.ssl.student.num_frames(fixtures.SAMPLES), dtype=torch.bool)
    mask[0, 3:13] = True
    mask[1, 20:27] = True
    mask[1, 30:36] = True                                  # 10 + 13 = 23 masked frames
    model.ssl.sample_time_mask = lambda batch, frames, padding_mask: mask.clone()
    _, batch = fixtures.utterance_batches()[0]
    for mode in (True, False):
        model.train(mode)
        loss, stats, weight = model(**batch)
        assert float(weight) == 23.0 == float(stats["num_masked"])
    # eval: the returned loss is the masked-frame mean (ESPnet weights it by ``weight`` over ranks)
    assert math.isclose(float(loss), float(stats["loss"]), rel_tol=1e-6)


def test_a_skipped_step_discards_its_codebook_statistics():
    """Step skipped on inf gradients (batch X), then a normal one (batch Y) == only the step on Y."""
    batches = fixtures.utterance_batches()
    task, args, skipped, optimizers = fixtures.build(accum_grad=1)
    fixtures.install_content_masks(skipped)
    handle = skipped.ssl.heads[0].weight.register_hook(lambda grad: grad * math.inf)
    fixtures.train(task, args, skipped, optimizers, batches[:1])
    assert skipped.ssl.num_updates == 0
    assert float(skipped.ssl.codebooks.accumulated_count.sum()) > 0   # X's statistics, not applied
    handle.remove()
    fixtures.train(task, args, skipped, optimizers, batches[1:2])

    task, args, direct, optimizers = fixtures.build(accum_grad=1)
    fixtures.install_content_masks(direct)
    fixtures.train(task, args, direct, optimizers, batches[1:2])
    assert skipped.ssl.num_updates == direct.ssl.num_updates == 1
    assert torch.allclose(skipped.ssl.codebooks.sums, direct.ssl.codebooks.sums, rtol=1e-6, atol=1e-7)
    assert torch.equal(skipped.ssl.codebooks.counts, direct.ssl.codebooks.counts)
