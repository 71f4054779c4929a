import torch
from nets_test_utils import deterministic_tiny, random_batch
from torch.nn import functional as F

from dinosr_espnet.nets import SSL_MODELS, Data2VecModel, DinoSRModel
from dinosr_espnet.nets.speech_encoder import standardize_waveform


def _fixed_mask(model, seed=0):
    """Make the model's span mask reproducible and remember it."""
    original = model.sample_time_mask
    masks = []

    def sample(batch, frames, padding_mask):
        torch.manual_seed(seed)
        mask = original(batch, frames, padding_mask)
        masks.append(mask)
        return mask

    model.sample_time_mask = sample
    return masks


def _manual_dinosr_loss(model, waveform, lengths, mask, codewords):
    """The spec's loss, computed step by step from the model's parts (pre-update ``codewords``)."""
    student = model.student
    with torch.no_grad():
        teacher_in = student.extract_features(waveform, lengths)
        _, layer_results = model.teacher.encoder(teacher_in.features, teacher_in.padding_mask, min_layer=0,
                                                 output_layer_results=True)
    top = layer_results[-model.config.average_top_k_layers:]
    student_out = student(waveform, lengths, time_mask=mask)
    x = student_out.x[mask]                       # final layer only
    per_head = []
    for k, (head, layer) in enumerate(zip(model.heads, top)):
        valid = ~teacher_in.padding_mask if teacher_in.padding_mask is not None else torch.ones_like(mask)
        normalised = []
        for b in range(layer.shape[0]):
            frames = layer[b, valid[b]]
            normalised.append(F.instance_norm(frames.T[None])[0].T)
        z = torch.cat([normalised[b][mask[b, valid[b]]] for b in range(layer.shape[0])])
        target = torch.cdist(z, codewords[k]).argmin(dim=-1)
        per_head.append(F.cross_entropy(head(x), target))
    return sum(per_head) / len(per_head)


def test_loss_is_head_averaged_cross_entropy_against_the_pre_update_codebook():
    torch.manual_seed(0)
    model = DinoSRModel(deterministic_tiny()).train()
    masks = _fixed_mask(model)
    waveform, lengths = random_batch([16000, 11000])
    codewords_before = model.codebooks.codewords().clone()
    output = model(waveform, lengths)
    expected = _manual_dinosr_loss(model, waveform, lengths, masks[-1], codewords_before)
    assert torch.allclose(output.loss, expected, atol=1e-4)
    assert torch.equal(model.codebooks.codewords(), codewords_before)  # applied at the optimizer step
    model.codebooks.apply_accumulated()
    assert not torch.allclose(model.codebooks.codewords(), codewords_before)  # the update did happen
    stale = _manual_dinosr_loss(model, waveform, lengths, masks[-1], model.codebooks.codewords())
    assert not torch.allclose(output.loss, stale, atol=1e-4)


def test_heads_are_averaged_not_summed():
    torch.manual_seed(1)
    model = DinoSRModel(deterministic_tiny(average_top_k_layers=3)).eval()
    with torch.no_grad():
        for head in model.heads:  # uniform predictions: every head's CE is log V
            head.weight.zero_()
            head.bias.zero_()
    waveform, lengths = random_batch([8000])
    output = model(waveform, lengths)
    assert abs(output.loss.item() - torch.log(torch.tensor(16.0)).item()) < 1e-5


def test_only_masked_valid_frames_are_targets_and_padding_is_never_masked():
    torch.manual_seed(2)
    model = DinoSRModel(deterministic_tiny()).train()
    masks = _fixed_mask(model)
    waveform, lengths = random_batch([16000, 6000])
    output = model(waveform, lengths)
    mask = masks[-1]
    valid_frames = model.student.output_lengths(lengths)
    assert not mask[1, valid_frames[1]:].any()
    assert output.num_masked == int(mask.sum()) > 0
    assert mask.sum(dim=1)[0] == mask.sum(dim=1)[1]
    assert sum(model.codebooks.batch_statistics(torch.zeros(2, 0, 64), torch.zeros(2, 0, dtype=torch.long))[1]
               .sum(dim=-1).tolist()) == 0


def test_padded_utterance_gets_the_same_loss_as_alone():
    torch.manual_seed(3)
    model = DinoSRModel(deterministic_tiny()).eval()
    short, short_lengths = random_batch([9000], seed=5)
    frames_alone = model.student.num_frames(9000)
    span_mask = torch.zeros(frames_alone, dtype=torch.bool)
    span_mask[2:8] = True
    span_mask[15:25] = True

    def first_utterance_mask(batch, frames, padding_mask):  # same masked frames alone and batched
        mask = torch.zeros(batch, frames, dtype=torch.bool)
        mask[0, :frames_alone] = span_mask
        return mask

    model.sample_time_mask = first_utterance_mask
    alone = model(short, short_lengths)
    padded = torch.cat([short, 1000.0 * torch.randn(1, 3000)], dim=1)  # garbage after the length
    batch, lengths = torch.cat([padded, torch.randn(1, 12000)]), torch.tensor([9000, 12000])
    batched = model(batch, lengths)
    assert batched.num_masked == alone.num_masked == 16
    assert torch.allclose(batched.loss, alone.loss, atol=1e-5)


def test_codebooks_do_not_move_in_eval_mode_and_move_in_training():
    torch.manual_seed(4)
    model = DinoSRModel(deterministic_tiny())
    waveform, lengths = random_batch([8000, 8000])
    before = model.codebooks.sums.clone()
    model.eval()(waveform, lengths)
    assert torch.equal(model.codebooks.sums, before)
    model.on_optimizer_step()
    assert torch.equal(model.codebooks.sums, before)  # nothing accumulated in eval mode
    model.train()(waveform, lengths)
    assert torch.equal(model.codebooks.sums, before)  # accumulated, not yet applied
    model.on_optimizer_step()
    assert not torch.equal(model.codebooks.sums, before)


def test_gradients_reach_student_parts_and_heads_only():
    torch.manual_seed(5)
    model = DinoSRModel(deterministic_tiny()).train()
    waveform, lengths = random_batch([8000, 8000])
    model(waveform, lengths).loss.backward()
    for name, parameter in model.named_parameters():
        if name.startswith("teacher."):
            assert parameter.grad is None, name
        elif "pos_conv" not in name:  # (pos_conv grads exist too but may be tiny)
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(not buffer.requires_grad for buffer in model.buffers())


def test_stats_report_perplexities_active_codewords_and_schedule():
    torch.manual_seed(6)
    model = DinoSRModel(deterministic_tiny()).train()
    waveform, lengths = random_batch([16000, 16000])
    stats = model(waveform, lengths).stats
    expected = {"loss", "target_ppl", "pred_ppl", "active_codewords", "active_codewords_0", "active_codewords_1",
                "ema_decay", "num_updates", "num_masked"}
    assert expected <= set(stats)
    assert 1.0 <= stats["target_ppl"] <= 16 and 1.0 <= stats["pred_ppl"] <= 16
    assert stats["active_codewords"] == (stats["active_codewords_0"] + stats["active_codewords_1"]) / 2
    assert stats["ema_decay"] == 0.999 and stats["num_updates"] == 0


def test_data2vec_regresses_the_average_of_top_k_instance_normed_layers():
    torch.manual_seed(7)
    model = Data2VecModel(deterministic_tiny(average_top_k_layers=2)).train()
    masks = _fixed_mask(model)
    waveform, lengths = random_batch([8000, 8000])
    output = model(waveform, lengths)
    mask = masks[-1]
    with torch.no_grad():
        features = model.student.extract_features(waveform, lengths).features
        _, results = model.teacher.encoder(features, None, output_layer_results=True)
    target = sum(F.instance_norm(r.transpose(1, 2)).transpose(1, 2) for r in results[-2:]) / 2
    prediction = model.final_proj(model.student(waveform, lengths, time_mask=mask).x)
    expected = ((prediction[mask] - target[mask]) ** 2).sum(-1).mean() / 64 ** 0.5
    assert torch.allclose(output.loss, expected, rtol=1e-4)
    for _ in range(3):
        model.on_optimizer_step()
    assert model.ema_decay() < 1.0 and not Data2VecModel.freezes_teacher


def test_ssl_models_registry_and_state_dict_prefixes():
    assert SSL_MODELS == {"dinosr": DinoSRModel, "data2vec": Data2VecModel}
    keys = DinoSRModel(deterministic_tiny()).state_dict().keys()
    assert "student.mask_emb" in keys and "codebooks.sums" in keys and "heads.1.weight" in keys
    assert "num_updates_buffer" in keys and any(k.startswith("teacher.encoder.layers.") for k in keys)


def test_waveform_is_standardised_inside_the_model():
    torch.manual_seed(8)
    model = DinoSRModel(deterministic_tiny()).eval()
    waveform, lengths = random_batch([8000])
    _fixed_mask(model, seed=1)
    loud = model(waveform * 100 + 3, lengths).loss
    quiet = model(standardize_waveform(waveform, lengths), lengths).loss
    assert torch.allclose(loud, quiet, atol=1e-4)


def test_positional_convolution_gets_the_right_gradient():
    """Every pos_conv parameter gets a non-zero gradient, equal to a float64 central difference."""
    from dinosr_espnet.nets import SpeechEncoder

    torch.manual_seed(7)
    model = DinoSRModel(deterministic_tiny()).train()
    waveform, lengths = random_batch([8000, 8000])
    model(waveform, lengths).loss.backward()
    pos_conv = [(n, p) for n, p in model.student.named_parameters() if "pos_conv" in n]
    assert len(pos_conv) == 2 * model.config.pos_conv_depth
    for name, parameter in pos_conv:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name

    encoder = SpeechEncoder(deterministic_tiny()).double()
    weights = torch.randn(2, encoder.num_frames(8000), encoder.config.encoder_embed_dim, dtype=torch.float64)
    signal = waveform.double()
    signal = (signal - signal.mean(dim=1, keepdim=True)) / signal.std(dim=1, keepdim=True)

    def objective():  # already standardised: the float32 standardisation is skipped
        return (encoder(signal, lengths, standardized=True).x * weights).sum()

    objective().backward()
    for name, parameter in encoder.encoder.pos_conv.named_parameters():
        direction = torch.randn_like(parameter)
        step = 1e-6
        with torch.no_grad():
            parameter.add_(step * direction)
            upper = objective()
            parameter.sub_(2 * step * direction)
            lower = objective()
            parameter.add_(step * direction)
        numeric = (upper - lower) / (2 * step)
        analytic = (parameter.grad * direction).sum()
        assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-7), (name, float(analytic), float(numeric))
