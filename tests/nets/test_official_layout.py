"""The official checkpoint layout, checked without the code under test's own inverse mapping.

``official_from_hugging_face`` is a key table written from the spec (section 7: the fairseq keys)
and Hugging Face's ``Data2VecAudioModel`` names (the same architecture, built by another project).
An "official" checkpoint is assembled from two independently initialised Hugging Face models
(student and teacher) through that table, imported with ``fairseq_to_dinosr`` and compared by
*behaviour*: the student's forward, the teacher's layer targets and the codebook assignments.
``dinosr_to_fairseq`` is never used here, so a mapping that is merely self-inverse (q/k swapped,
the two LayerNorms of a layer swapped, codebooks reversed) fails.
"""
from typing import Dict

import pytest
import torch
from nets_test_utils import deterministic_tiny, random_batch
from torch.nn import functional as F

from dinosr_espnet.nets import DinoSRModel, SpeechEncoder, fairseq_to_dinosr
from dinosr_espnet.nets.speech_encoder import standardize_waveform

transformers = pytest.importorskip("transformers")
from test_reference_parity import hugging_face_copy  # noqa: E402  (needs transformers)

CONFIG = deterministic_tiny(encoder_layers=3, average_top_k_layers=3)


def official_from_hugging_face(num_conv: int, num_pos_conv: int, num_layers: int) -> Dict[str, str]:
    """Official key (spec 7) -> Hugging Face Data2VecAudioModel key, for the student part."""
    table = {"mask_emb": "masked_spec_embed"}
    for i in range(num_conv):  # Sequential(conv, dropout, Sequential(transpose, LayerNorm, transpose), GELU)
        table[f"feature_extractor.conv_layers.{i}.0.weight"] = f"feature_extractor.conv_layers.{i}.conv.weight"
        for name in ("weight", "bias"):
            table[f"feature_extractor.conv_layers.{i}.2.1.{name}"] = f"feature_extractor.conv_layers.{i}.layer_norm.{name}"
    for name in ("weight", "bias"):
        table[f"layer_norm.{name}"] = f"feature_projection.layer_norm.{name}"
        table[f"post_extract_proj.{name}"] = f"feature_projection.projection.{name}"
        table[f"encoder.layer_norm.{name}"] = f"encoder.layer_norm.{name}"
        for i in range(num_pos_conv):
            table[f"encoder.pos_conv.{i}.0.{name}"] = f"encoder.pos_conv_embed.layers.{i}.conv.{name}"
        for i in range(num_layers):
            official, theirs = f"encoder.layers.{i}.", f"encoder.layers.{i}."
            for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
                table[f"{official}self_attn.{projection}.{name}"] = f"{theirs}attention.{projection}.{name}"
            table[f"{official}self_attn_layer_norm.{name}"] = f"{theirs}layer_norm.{name}"  # after attention
            table[f"{official}fc1.{name}"] = f"{theirs}feed_forward.intermediate_dense.{name}"
            table[f"{official}fc2.{name}"] = f"{theirs}feed_forward.output_dense.{name}"
            table[f"{official}final_layer_norm.{name}"] = f"{theirs}final_layer_norm.{name}"  # after the FFN
    return table


def randomised_hugging_face(seed: int):
    """A Data2VecAudioModel of CONFIG's shape with *every* tensor random (LayerNorm weights too:
    their default 1/0 would hide a swap of two LayerNorms)."""
    model = hugging_face_copy(SpeechEncoder(CONFIG))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.3 * noise)
            else:
                parameter.copy_(noise * (0.3 if parameter.dim() < 2 else parameter.shape[-1] ** -0.5))
    return model.eval()


@pytest.fixture(scope="module")
def official():
    """(official checkpoint["model"], student HF model, teacher HF model)."""
    student, teacher = randomised_hugging_face(1), randomised_hugging_face(2)
    table = official_from_hugging_face(len(CONFIG.conv_feature_layers), CONFIG.pos_conv_depth, CONFIG.encoder_layers)
    student_state, teacher_state = student.state_dict(), teacher.state_dict()
    assert set(table.values()) == set(student_state)  # the table covers the whole architecture
    checkpoint = {official_key: student_state[theirs] for official_key, theirs in table.items()}
    checkpoint["_ema"] = {official_key[len("encoder."):]: teacher_state[theirs]
                          for official_key, theirs in table.items() if official_key.startswith("encoder.")}
    generator = torch.Generator().manual_seed(3)
    for i in range(CONFIG.average_top_k_layers):  # codebook i <-> head i <-> i-th of the top-K teacher layers
        checkpoint[f"heads.{i}.weight"] = torch.randn(CONFIG.codebook_size, CONFIG.encoder_embed_dim, generator=generator)
        checkpoint[f"heads.{i}.bias"] = torch.randn(CONFIG.codebook_size, generator=generator)
        checkpoint[f"_codebook_cnts{i}"] = torch.rand(CONFIG.codebook_size, generator=generator) * 3 + 0.5
        checkpoint[f"_codebook{i}"] = torch.randn(CONFIG.codebook_size, CONFIG.encoder_embed_dim,
                                                  generator=generator) * checkpoint[f"_codebook_cnts{i}"][:, None]
    # The teacher sees the student's CNN features: its Hugging Face twin = student front end + teacher encoder.
    teacher_twin = randomised_hugging_face(1)
    teacher_twin.load_state_dict({**student_state, **{k: v for k, v in teacher_state.items() if k.startswith("encoder.")}})
    return checkpoint, student, teacher_twin


@pytest.fixture(scope="module")
def imported(official):
    checkpoint, _, _ = official
    model = DinoSRModel(CONFIG)
    model.load_state_dict(fairseq_to_dinosr(checkpoint), strict=True)
    return model.eval()


def test_imported_student_computes_what_hugging_face_computes(official, imported):
    _, student, _ = official
    waveform, lengths = random_batch([16000, 16000], seed=7)
    time_mask = torch.zeros(2, imported.student.num_frames(16000), dtype=torch.bool)
    time_mask[0, 4:14] = True
    time_mask[1, 20:30] = True
    with torch.no_grad():
        ours = imported.student(waveform, lengths, time_mask=time_mask).x
        theirs = student(standardize_waveform(waveform, lengths), mask_time_indices=time_mask).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-4), float((ours - theirs).abs().max())


def _hugging_face_layer_targets(model, waveform, lengths, top_k):
    """FFN outputs (before the residual) of the top ``top_k`` layers, instance-normed over time."""
    captured = []
    hooks = [layer.feed_forward.register_forward_hook(lambda module, inputs, output: captured.append(output))
             for layer in model.encoder.layers[-top_k:]]
    with torch.no_grad():
        model(standardize_waveform(waveform, lengths))
    for hook in hooks:
        hook.remove()
    return [F.instance_norm(output.transpose(1, 2)).transpose(1, 2) for output in captured]


def test_imported_teacher_targets_and_codebook_order_follow_the_official_layout(official, imported):
    checkpoint, _, teacher_twin = official
    top_k = CONFIG.average_top_k_layers
    waveform, lengths = random_batch([16000, 16000], seed=8)
    expected_targets = _hugging_face_layer_targets(teacher_twin, waveform, lengths, top_k)
    with torch.no_grad():
        front = imported.student.extract_features(waveform, lengths)
        ours = imported.teacher.layer_targets(front.features, front.padding_mask, top_k)
    for k in range(top_k):
        assert torch.allclose(ours[k], expected_targets[k], atol=1e-3), f"teacher layer target {k}"
    stacked = torch.stack([target.reshape(-1, target.size(-1)) for target in ours])     # [K, N, D]
    assigned = imported.codebooks.assign(stacked)
    for k in range(top_k):
        codewords = checkpoint[f"_codebook{k}"] / checkpoint[f"_codebook_cnts{k}"][:, None]
        expected = torch.cdist(stacked[k], codewords).argmin(dim=-1)
        assert (assigned[k] == expected).float().mean() > 0.99, f"codebook {k}"
        assert torch.equal(imported.heads[k].weight, checkpoint[f"heads.{k}.weight"])
