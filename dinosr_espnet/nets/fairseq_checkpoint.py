"""Key/tensor mapping between the official fairseq DinoSR checkpoint and ``DinoSRModel.state_dict()``.

Official layout (spec section 7), ours on the right::

    mask_emb                                        student.mask_emb
    feature_extractor.conv_layers.{i}.0.weight      student.feature_extractor.conv_layers.{i}.conv.weight
    feature_extractor.conv_layers.{i}.2.1.*         student.feature_extractor.conv_layers.{i}.layer_norm.*
    layer_norm.*, post_extract_proj.*               student.layer_norm.*, student.post_extract_proj.*
    encoder.pos_conv.{i}.0.*                        student.encoder.pos_conv.layers.{i}.conv.*
    encoder.layers.{i}.self_attn.{q,k,v,out}_proj.* student.encoder.layers.{i}.attention.{q,k,v,out}_proj.*
    encoder.layers.{i}.self_attn_layer_norm.*       student.encoder.layers.{i}.attention_layer_norm.*
    encoder.layers.{i}.fc{1,2}.*                    student.encoder.layers.{i}.feed_forward.fc{1,2}.*
    encoder.layers.{i}.final_layer_norm.*, encoder.layer_norm.*   (same under student.encoder.)
    _ema = {<encoder keys without "encoder.">}      teacher.encoder.*
    _codebook{i} [V, D], _codebook_cnts{i} [V]      codebooks.sums[i], codebooks.counts[i]
    heads.{i}.*                                     heads.{i}.*
    (none)                                          num_updates_buffer

Tensors are passed through unchanged (same dtype and values), so the mapping round-trips bit-exactly.
"""
import ast
import re
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinosr_espnet.nets.config import DinoSRConfig

# (fairseq pattern, ours pattern) for the keys of the Transformer encoder, relative to the encoder.
ENCODER_RULES: List[Tuple[str, str]] = [
    (r"pos_conv\.(\d+)\.0\.(weight|bias)", r"pos_conv.layers.\1.conv.\2"),
    (r"layer_norm\.(weight|bias)", r"layer_norm.\1"),
    (r"layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"layers.\1.attention.\2_proj.\3"),
    (r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"layers.\1.attention_layer_norm.\2"),
    (r"layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"layers.\1.feed_forward.\2.\3"),
    (r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"layers.\1.final_layer_norm.\2"),
]
# The same for the rest of the model (keys relative to the model).
MODEL_RULES: List[Tuple[str, str]] = [
    (r"mask_emb", r"student.mask_emb"),
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"student.feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)",
     r"student.feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"student.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"student.post_extract_proj.\1"),
    (r"heads\.(\d+)\.(weight|bias)", r"heads.\1.\2"),
] + [(r"encoder\." + source, r"student.encoder." + target) for source, target in ENCODER_RULES]

FAIRSEQ_CODEBOOK = re.compile(r"_codebook(\d+)")
FAIRSEQ_CODEBOOK_COUNTS = re.compile(r"_codebook_cnts(\d+)")
NUM_UPDATES_KEY = "num_updates_buffer"


def _pattern_to_template(pattern: str) -> str:
    """Turn a rule's regex into a ``re.sub`` template for the inverse direction (``(\\d+)`` -> ``\\1``)."""
    index = 0

    def group(_: re.Match) -> str:
        nonlocal index
        index += 1
        return f"\\{index}"

    template = re.sub(r"\([^()]*\)", group, pattern)
    return template.replace("\\.", ".")


def _template_to_pattern(template: str, source_pattern: str) -> str:
    """Turn a ``re.sub`` template back into a regex, group ``\\n`` taking the n-th group of ``source_pattern``."""
    groups = re.findall(r"\([^()]*\)", source_pattern)
    pattern = re.escape(template)
    for number, group in enumerate(groups, start=1):
        pattern = pattern.replace(re.escape(f"\\{number}"), group)
    return pattern


def _translate(key: str, rules: List[Tuple[str, str]], forward: bool) -> Optional[str]:
    for fairseq_pattern, our_template in rules:
        if forward:
            match = re.fullmatch(fairseq_pattern, key)
            if match:
                return match.expand(our_template)
        else:
            match = re.fullmatch(_template_to_pattern(our_template, fairseq_pattern), key)
            if match:
                return match.expand(_pattern_to_template(fairseq_pattern))
    return None


def _raise_if_any(problems: Dict[str, List[str]], where: str) -> None:
    lines = [f"{label}: {sorted(keys)}" for label, keys in problems.items() if keys]
    if lines:
        raise KeyError(f"{where}: " + "; ".join(lines))


def fairseq_to_dinosr(fairseq_model_state: Mapping[str, Any], num_updates: int = 0) -> Dict[str, Tensor]:
    """Official ``checkpoint["model"]`` -> ``DinoSRModel.state_dict()`` keys (tensors unchanged).

    KeyError listing every unknown key, or missing teacher/codebook parts.
    """
    state: Dict[str, Tensor] = OrderedDict()
    unknown: List[str] = []
    ema: Dict[str, Tensor] = {}
    codebook_sums: Dict[int, Tensor] = {}
    codebook_counts: Dict[int, Tensor] = {}
    for key, value in fairseq_model_state.items():
        if key == "_ema":
            if not isinstance(value, Mapping):
                raise KeyError("'_ema' must be a dict of teacher-encoder tensors")
            ema.update(value)
            continue
        if key.startswith("_ema."):  # flattened variant
            ema[key[len("_ema."):]] = value
            continue
        match = FAIRSEQ_CODEBOOK_COUNTS.fullmatch(key)
        if match:
            codebook_counts[int(match.group(1))] = value
            continue
        match = FAIRSEQ_CODEBOOK.fullmatch(key)
        if match:
            codebook_sums[int(match.group(1))] = value
            continue
        ours = _translate(key, MODEL_RULES, forward=True)
        if ours is None:
            unknown.append(key)
        else:
            state[ours] = value
    for key, value in ema.items():
        ours = _translate(key, ENCODER_RULES, forward=True)
        if ours is None:
            unknown.append(f"_ema[{key}]")
        else:
            state["teacher.encoder." + ours] = value
    student_encoder = {key[len("student.encoder."):] for key in state if key.startswith("student.encoder.")}
    teacher_encoder = {key[len("teacher.encoder."):] for key in state if key.startswith("teacher.encoder.")}
    num_heads = len({key.split(".")[1] for key in state if key.startswith("heads.")})
    expected_codebooks = set(range(max(num_heads, len(codebook_sums), len(codebook_counts))))
    _raise_if_any({
        "unknown keys": unknown,
        "missing _ema keys": [f"_ema[{k}]" for k in _fairseq_encoder_keys(student_encoder - teacher_encoder)],
        "_ema keys absent from encoder": [f"_ema[{k}]" for k in
                                          _fairseq_encoder_keys(teacher_encoder - student_encoder)],
        "missing codebooks": [f"_codebook{i}" for i in sorted(expected_codebooks - set(codebook_sums))]
        + [f"_codebook_cnts{i}" for i in sorted(expected_codebooks - set(codebook_counts))],
    }, "official DinoSR checkpoint")
    if expected_codebooks:
        order = sorted(expected_codebooks)
        state["codebooks.sums"] = torch.stack([codebook_sums[i] for i in order])
        state["codebooks.counts"] = torch.stack([codebook_counts[i] for i in order])
    state[NUM_UPDATES_KEY] = torch.tensor(int(num_updates), dtype=torch.long)
    return state


def _fairseq_encoder_keys(our_keys: Iterable[str]) -> List[str]:
    return sorted(_translate(key, ENCODER_RULES, forward=False) or key for key in our_keys)


def dinosr_to_fairseq(dinosr_state: Mapping[str, Tensor]) -> Dict[str, Any]:
    """``DinoSRModel.state_dict()`` -> official ``checkpoint["model"]`` layout (inverse of ``fairseq_to_dinosr``).

    ``num_updates_buffer`` has no place there and is dropped. KeyError listing every unknown key.
    """
    state: Dict[str, Any] = OrderedDict()
    ema: Dict[str, Tensor] = OrderedDict()
    unknown: List[str] = []
    for key, value in dinosr_state.items():
        if key == NUM_UPDATES_KEY:
            continue
        if key == "codebooks.sums":
            for index, codebook in enumerate(value.unbind(0)):
                state[f"_codebook{index}"] = codebook.clone()
            continue
        if key == "codebooks.counts":
            for index, counts in enumerate(value.unbind(0)):
                state[f"_codebook_cnts{index}"] = counts.clone()
            continue
        if key.startswith("teacher.encoder."):
            fairseq_key = _translate(key[len("teacher.encoder."):], ENCODER_RULES, forward=False)
            if fairseq_key is None:
                unknown.append(key)
            else:
                ema[fairseq_key] = value
            continue
        fairseq_key = _translate(key, MODEL_RULES, forward=False)
        if fairseq_key is None:
            unknown.append(key)
        else:
            state[fairseq_key] = value
    _raise_if_any({"unknown keys": unknown}, "DinoSR state dict")
    state["_ema"] = ema
    return state


def check_state_against(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], where: str) -> None:
    """KeyError listing missing/unexpected keys, ValueError listing shape mismatches."""
    _raise_if_any({"missing keys": [k for k in expected if k not in state],
                   "unexpected keys": [k for k in state if k not in expected]}, where)
    mismatched = [f"{key}: {tuple(state[key].shape)} != expected {tuple(expected[key].shape)}"
                  for key in expected if tuple(state[key].shape) != tuple(expected[key].shape)]
    if mismatched:
        raise ValueError(f"{where}: shape mismatch: " + "; ".join(mismatched))


# --- configuration --------------------------------------------------------------------------
FAIRSEQ_CONFIG_NAMES = {"codebook_init_decay": "codebook_decay"}

# fairseq ``cfg.model`` fields that this project does not represent, with the only value it
# implements. A checkpoint that sets another value is refused (the error lists every such field)
# instead of being loaded into a model that computes something else. Checked only while the field
# is not a ``DinoSRConfig`` field (a field the model learns to represent is taken over instead).
FAIRSEQ_IMPLEMENTED_VALUES: Dict[str, Any] = {
    "layer_norm_first": False,            # post-LN Transformer only
    "extractor_mode": "layer_norm",       # LayerNorm in every CNN block ("default" = GroupNorm)
    "layer_type": "transformer",          # no conformer layers
    "activation_fn": "gelu",
    "discrete": True,                     # DinoSR's codebook targets (false = data2vec regression)
    "instance_norm_target_layer": True,   # targets: instance norm of each teacher layer ...
    "layer_norm_target_layer": False,
    "batch_norm_target_layer": False,
    "group_norm_target_layer": False,
    "layer_norm_targets": False,          # ... and no norm after averaging
    "instance_norm_targets": False,
    "ema_transformer_only": True,         # teacher = EMA of the Transformer only
    "ema_layers_only": True,              # pos_conv copied, not averaged
    "freeze_pre_enc_modules": True,       # the 200k freeze also freezes the shared CNN/LN/projection
    "dropout_features": 0.0,
    "mask_selection": "static",
    "mask_other": 0.0,
    "no_mask_overlap": False,
    "mask_dropout": 0.0,
    "mask_channel_prob": 0.0,             # no channel masking in pre-training
    "quantize_targets": False,
    "quantize_input": False,
    "target_glu": False,
}
# Official base value of ema_end_decay: fairseq overwrites cfg.model.ema_end_decay with 1.0 at the
# teacher freeze, so a checkpoint saved after it carries 1.0 (see ``config_from_fairseq``).
OFFICIAL_EMA_END_DECAY = 0.9999


def _unimplemented_fields(model_config: Mapping[str, Any]) -> List[str]:
    known = set(DinoSRConfig.__dataclass_fields__)
    problems = []
    for name, implemented in FAIRSEQ_IMPLEMENTED_VALUES.items():
        if name in known or name not in model_config or model_config[name] is None:
            continue
        value = model_config[name]
        same = (value == implemented if not isinstance(implemented, float)
                else isinstance(value, (int, float)) and float(value) == implemented)
        if not same:
            problems.append(f"{name}: {value!r} (implemented: {implemented!r})")
    init_decay, end_decay = model_config.get("codebook_init_decay"), model_config.get("codebook_end_decay")
    if init_decay is not None and end_decay is not None and float(init_decay) != float(end_decay):
        problems.append(f"codebook_end_decay: {end_decay!r} != codebook_init_decay {init_decay!r} "
                        f"(implemented: a constant codebook decay)")
    return problems


def _safe_literal(expression: str) -> Any:
    """Evaluate fairseq's ``conv_feature_layers`` string (lists/tuples of ints with ``+`` and ``*``)."""
    def evaluate(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [evaluate(element) for element in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = evaluate(node.left), evaluate(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported expression in conv_feature_layers: {expression!r}")

    return evaluate(ast.parse(expression, mode="eval"))


def config_from_fairseq(model_config: Optional[Mapping[str, Any]], fairseq_model_state: Mapping[str, Any],
                        task_config: Optional[Mapping[str, Any]] = None, num_updates: int = 0,
                        notes: Optional[List[str]] = None) -> DinoSRConfig:
    """``DinoSRConfig`` from the checkpoint's ``cfg["model"]`` (known fields only), with every shape
    (dims, layers, codebooks, CNN channels/kernels) taken from the tensors themselves.

    - ValueError listing every field set to a value that is not implemented
      (``FAIRSEQ_IMPLEMENTED_VALUES``, e.g. ``layer_norm_first: true``, ``extractor_mode: default``).
    - ``normalize_waveform`` = ``cfg["task"]["normalize"]`` (``task_config``) when present.
    - ``ema_end_decay: 1.0`` with ``num_updates >= freeze_teacher_step`` is the mark fairseq leaves
      at the teacher freeze (it sets ``cfg.ema_end_decay = 1``), not the schedule the model was
      trained with: it becomes the official 0.9999 (our freeze sets the decay to 1 by itself from
      ``freeze_teacher_step`` on, so resuming is unchanged, and a run started from the written
      config.yaml anneals as the official one did). A note is appended to ``notes``.
    """
    model_config = dict(model_config or {})
    problems = _unimplemented_fields(model_config)
    if problems:
        raise ValueError("the checkpoint's cfg.model sets what this implementation does not do: "
                         + "; ".join(problems))
    known = set(DinoSRConfig.__dataclass_fields__)
    values: Dict[str, Any] = {}
    for name, value in model_config.items():
        name = FAIRSEQ_CONFIG_NAMES.get(name, name)
        if name in known and value is not None:
            values[name] = value
    if task_config is not None and task_config.get("normalize") is not None:
        values["normalize_waveform"] = bool(task_config["normalize"])
    freeze_step = int(values.get("freeze_teacher_step", DinoSRConfig().freeze_teacher_step))
    if values.get("ema_end_decay") == 1.0 and num_updates >= freeze_step:
        values["ema_end_decay"] = OFFICIAL_EMA_END_DECAY
        if notes is not None:
            notes.append(f"cfg.model.ema_end_decay is 1.0 after the teacher freeze (update {num_updates} >= "
                         f"{freeze_step}): fairseq's freeze mark; using the official {OFFICIAL_EMA_END_DECAY}")
    if isinstance(values.get("conv_feature_layers"), str):
        values["conv_feature_layers"] = _safe_literal(values["conv_feature_layers"])
    state = fairseq_model_state
    conv_indices = sorted({int(m.group(1)) for k in state
                           for m in [re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k)] if m})
    if conv_indices:
        strides = [layer[2] for layer in values.get("conv_feature_layers", DinoSRConfig().conv_feature_layers)]
        if len(strides) != len(conv_indices):
            raise ValueError(f"cfg conv_feature_layers has {len(strides)} layers, the weights {len(conv_indices)}")
        values["conv_feature_layers"] = [
            [int(state[f"feature_extractor.conv_layers.{i}.0.weight"].shape[0]),
             int(state[f"feature_extractor.conv_layers.{i}.0.weight"].shape[2]), int(stride)]
            for i, stride in zip(conv_indices, strides)]
        values["conv_bias"] = "feature_extractor.conv_layers.0.0.bias" in state
    if "mask_emb" in state:
        values["encoder_embed_dim"] = int(state["mask_emb"].shape[0])
    layer_indices = {int(m.group(1)) for k in state for m in [re.match(r"encoder\.layers\.(\d+)\.", k)] if m}
    if layer_indices:
        values["encoder_layers"] = max(layer_indices) + 1
        values["encoder_ffn_embed_dim"] = int(state["encoder.layers.0.fc1.weight"].shape[0])
    head_indices = {int(m.group(1)) for k in state for m in [re.match(r"heads\.(\d+)\.", k)] if m}
    if head_indices:
        values["average_top_k_layers"] = max(head_indices) + 1
        values["codebook_size"] = int(state["heads.0.weight"].shape[0])
    pos_indices = {int(m.group(1)) for k in state for m in [re.match(r"encoder\.pos_conv\.(\d+)\.", k)] if m}
    if pos_indices:
        depth = max(pos_indices) + 1
        kernel = int(state["encoder.pos_conv.0.0.weight"].shape[2])
        values["pos_conv_depth"] = depth
        if max(3, values.get("conv_pos", DinoSRConfig().conv_pos) // depth) != kernel:
            values["conv_pos"] = kernel * depth
        values["conv_pos_groups"] = values["encoder_embed_dim"] // int(state["encoder.pos_conv.0.0.weight"].shape[1]) \
            if "encoder_embed_dim" in values else values.get("conv_pos_groups", DinoSRConfig().conv_pos_groups)
    return DinoSRConfig.from_dict(values)
