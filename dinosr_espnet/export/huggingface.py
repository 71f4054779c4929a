"""Export to Hugging Face ``transformers``: the student is a ``Data2VecAudioModel``, a CTC model a
``Data2VecAudioForCTC`` + ``Wav2Vec2Processor``; the codebooks go beside them in ``codebooks.safetensors``.

The DinoSR student (CNN -> LayerNorm -> Linear -> post-LN Transformer with a stack of positional
convolutions) is exactly ``Data2VecAudioModel``'s architecture; only parameter names differ
(``STUDENT_TO_HUGGING_FACE``). Everything is written with safetensors / JSON (no pickle) and nothing is
downloaded. ``transformers`` is an optional dependency (``pip install .[export]``).

Known differences from this project's forward (both documented in the README written to OUT_DIR):

- padding: our encoder re-zeroes padded frames before *every* positional-convolution block (spec
  pitfall 16), ``transformers`` (like fairseq) only before the first. An utterance alone, or the longest
  one of a padded batch, gives the same hidden states; a shorter utterance of a padded batch differs
  slightly in ``transformers``.
- the feature extractor's standardisation uses variance + 1e-7 where ours uses + 1e-5; with the
  bias-free CNN and its LayerNorm the hidden states barely move (measured in the tests).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import Tensor

from dinosr_espnet.export.model_dirs import (CTC, PRETRAINED, ModelDir, ModelDirError, inspect_model_dir,
                                             load_ctc, load_pretrained, raw_model_conf)
from dinosr_espnet.export.output_dir import atomic_output_dir
from dinosr_espnet.nets.config import DinoSRConfig

SAMPLE_RATE = 16000
# Fine-tuning masking of the official recipe (dinosr_spec.md section 3), stored in the exported config
# of a pre-trained model for users who fine-tune it with transformers.
FINETUNE_MASK_TIME_PROB = 0.65

# our SpeechEncoder key -> Data2VecAudioModel key (first match wins; the last line keeps the rest as is)
STUDENT_TO_HUGGING_FACE = [
    (r"mask_emb", r"masked_spec_embed"),
    (r"layer_norm\.(.*)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(.*)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.layers\.(.*)", r"encoder.pos_conv_embed.layers.\1"),
    (r"encoder\.layers\.(\d+)\.attention_layer_norm\.(.*)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.fc1\.(.*)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.fc2\.(.*)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"(.*)", r"\1"),
]

# DinoSRConfig fields Data2VecAudio represents (architecture and regularisation) ...
REPRESENTED_FIELDS = {
    "conv_feature_layers", "conv_bias", "normalize_waveform", "encoder_embed_dim", "encoder_layers",
    "encoder_attention_heads", "encoder_ffn_embed_dim", "dropout", "attention_dropout", "activation_dropout",
    "encoder_layerdrop", "dropout_input", "conv_pos", "conv_pos_groups", "pos_conv_depth",
    # pads the frame axis inside the Transformer with masked frames: no effect on valid frames
    "required_seq_len_multiple",
    "mask_prob", "mask_length", "mask_min_masks",
}
# ... and those that only matter to pre-training (codebooks and heads go to codebooks.safetensors).
PRETRAINING_ONLY_FIELDS = {
    "feature_grad_mult", "require_same_masks", "average_top_k_layers", "codebook_size", "codebook_decay",
    "loss_beta", "loss_scale", "ema_decay", "ema_end_decay", "ema_anneal_end_step", "freeze_teacher_step",
    "codebook_reseed_after", "codebook_init_from_targets",
    # how the model runs, not what it computes
    "compile", "compile_backend", "compile_mode", "compile_dynamic",
}


class ExportError(ValueError):
    """A model that cannot be exported as asked; the message names the field or file."""


def require_transformers():
    """The ``transformers`` module, or ExportError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise ExportError("the Hugging Face export needs the optional 'transformers' package: "
                          "pip install 'dinosr_espnet[export]' (or pip install transformers)") from None
    return transformers


def check_exportable(model_conf: Mapping[str, Any], where: str) -> None:
    """ExportError naming the first field of ``model_conf`` that Data2VecAudio cannot represent.

    A field this exporter does not know (e.g. ``layer_norm_first``, or a future front-end option) is
    refused, unless it is a DinoSRConfig field at its official default.
    """
    defaults = DinoSRConfig().to_dict()   # YAML-shaped (lists), as model_conf is
    uses_cnn = model_conf.get("frontend", defaults["frontend"]) == "cnn"
    for key, value in model_conf.items():
        if key in REPRESENTED_FIELDS or key in PRETRAINING_ONLY_FIELDS:
            continue
        if uses_cnn and key.startswith("fbank_"):   # options of the log-mel front end, unused by the CNN
            continue
        if key in defaults and value == defaults[key]:
            continue
        known = "a field this exporter has no mapping for" if key in defaults else "not a DinoSRConfig field"
        raise ExportError(f"{where}: model_conf.{key} = {value!r} cannot be exported to Data2VecAudio ({known})")


def student_state_to_hugging_face(student_state: Mapping[str, Tensor], prefix: str = "") -> Dict[str, Tensor]:
    """Our ``SpeechEncoder.state_dict()`` under Data2VecAudioModel's names (each with ``prefix`` in front)."""
    state = {}
    for key, value in student_state.items():
        for pattern, template in STUDENT_TO_HUGGING_FACE:
            if re.fullmatch(pattern, key):
                state[prefix + re.sub(pattern, template, key)] = value.detach().clone().contiguous()
                break
    return state


def hugging_face_config_values(config: DinoSRConfig) -> Dict[str, Any]:
    """Data2VecAudioConfig keyword arguments for the student of ``config``."""
    conv = config.conv_feature_layers
    return dict(
        conv_dim=[layer[0] for layer in conv], conv_kernel=[layer[1] for layer in conv],
        conv_stride=[layer[2] for layer in conv], num_feat_extract_layers=len(conv), conv_bias=config.conv_bias,
        feat_extract_activation="gelu", hidden_size=config.encoder_embed_dim,
        num_hidden_layers=config.encoder_layers, num_attention_heads=config.encoder_attention_heads,
        intermediate_size=config.encoder_ffn_embed_dim, hidden_act="gelu",
        num_conv_pos_embeddings=config.pos_conv_depth,
        conv_pos_kernel_size=max(3, config.conv_pos // config.pos_conv_depth),
        num_conv_pos_embedding_groups=config.conv_pos_groups, layer_norm_eps=1e-5,
        hidden_dropout=config.dropout, attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout, feat_proj_dropout=config.dropout_input,
        layerdrop=config.encoder_layerdrop, mask_time_length=config.mask_length,
        mask_time_min_masks=config.mask_min_masks, add_adapter=False, use_weighted_layer_sum=False)


def feature_extractor_for(config: DinoSRConfig):
    """Wav2Vec2FeatureExtractor: raw 16 kHz mono, standardised per utterance iff ``normalize_waveform``."""
    transformers = require_transformers()
    return transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=config.normalize_waveform,
        return_attention_mask=True)


def build_hugging_face_model(config: DinoSRConfig, student_state: Mapping[str, Tensor],
                             mask_time_prob: float = FINETUNE_MASK_TIME_PROB):
    """A ``Data2VecAudioModel`` holding ``student_state`` (strict: every tensor has its place)."""
    transformers = require_transformers()
    hf_config = transformers.Data2VecAudioConfig(**hugging_face_config_values(config), mask_time_prob=mask_time_prob)
    model = transformers.Data2VecAudioModel(hf_config)
    load_strictly(model, student_state_to_hugging_face(student_state))
    return model.eval()


def load_strictly(hf_model, state: Dict[str, Tensor]) -> None:
    """``load_state_dict(strict=True)``; ``masked_spec_embed`` is left out when the transformers model has
    none (it only creates one when a masking probability is positive)."""
    names = set(hf_model.state_dict())
    state = {key: value for key, value in state.items() if key in names or not key.endswith("masked_spec_embed")}
    hf_model.load_state_dict(state, strict=True)


# --- units: codebooks and heads -------------------------------------------------------------------

def codebook_tensors(model) -> Dict[str, Tensor]:
    """``codewords`` [K, V, D] (running sum / count), ``counts`` [K, V], ``layers`` [K] (1-based),
    ``head_weight`` [K, V, D], ``head_bias`` [K, V] of a DinoSRModel."""
    from dinosr_espnet.analysis.unit_extraction import target_layer_numbers

    return {"codewords": model.codebooks.codewords().detach().float().contiguous(),
            "counts": model.codebooks.counts.detach().float().contiguous(),
            "layers": torch.tensor(target_layer_numbers(model), dtype=torch.int64),
            "head_weight": torch.stack([head.weight.detach() for head in model.heads]).float().contiguous(),
            "head_bias": torch.stack([head.bias.detach() for head in model.heads]).float().contiguous()}


UNITS_README = """
## Discrete units (`codebooks.safetensors`)

DinoSR's online codebooks, which transformers has no place for. Tensors (float32 unless noted):

| name | shape | what |
|---|---|---|
| `codewords` | [K, V, D] | codeword v of codebook k = running sum / running count |
| `counts` | [K, V] | running counts (official layout: `_codebook{{k}}` / `_codebook_cnts{{k}}`) |
| `layers` | [K] int64 | Transformer layer (1-based) of codebook k: {layers} |
| `head_weight`, `head_bias` | [K, V, D], [K, V] | the student's prediction heads on the last hidden state |

Codebook units, as pre-training assigns them: the target of layer `l` is the **feed-forward output of
layer l before its residual and final LayerNorm** (not `hidden_states[l]`, which is after them), which in
transformers is the output of `model.encoder.layers[l - 1].feed_forward`; normalise it per utterance
and channel over time (instance norm, biased variance, eps 1e-5, statistics over valid frames only); the
unit is the nearest codeword (squared L2). Pre-training computes targets with the EMA **teacher**:
this export holds the {encoder}{teacher_note}. Head units: argmax over V of
`last_hidden_state @ head_weight[k].T + head_bias[k]` (the student's prediction; exact with a student export).

```python
import torch
from safetensors.torch import load_file
from transformers import Data2VecAudioModel, Wav2Vec2FeatureExtractor

model = Data2VecAudioModel.from_pretrained(OUT_DIR).eval()
extractor = Wav2Vec2FeatureExtractor.from_pretrained(OUT_DIR)
books = load_file(f"{{OUT_DIR}}/codebooks.safetensors")
targets = {{}}
for k, layer in enumerate(books["layers"].tolist()):
    model.encoder.layers[layer - 1].feed_forward.register_forward_hook(
        lambda module, args, output, k=k: targets.__setitem__(k, output))
inputs = extractor(waveform, sampling_rate=16000, return_tensors="pt")  # one utterance: no padding
with torch.no_grad():
    last = model(**inputs).last_hidden_state[0]                          # [frame, D]
units = {{}}
for k, target in targets.items():
    target = target[0]                                                   # [frame, D]
    target = (target - target.mean(0)) / torch.sqrt(target.var(0, correction=0) + 1e-5)
    units[k] = torch.cdist(target, books["codewords"][k]).argmin(-1)     # [frame]
head_units = (last @ books["head_weight"].transpose(1, 2) + books["head_bias"][:, None]).argmax(-1)  # [K, frame]
```

`python -m dinosr_espnet.bin.extract_features` computes the same units in batches from the original model dir.
"""


def _readme(kind: str, source: ModelDir, extra: str) -> str:
    if kind == CTC:
        load = ("from transformers import Data2VecAudioForCTC, Wav2Vec2Processor\n"
                "model = Data2VecAudioForCTC.from_pretrained(OUT_DIR).eval()\n"
                "processor = Wav2Vec2Processor.from_pretrained(OUT_DIR)\n"
                "inputs = processor(waveform, sampling_rate=16000, return_tensors=\"pt\")\n"
                "text = processor.batch_decode(model(**inputs).logits.argmax(-1))[0]")
        what = ("a CTC model fine-tuned with ESPnet (`encoder: dinosr`): `Data2VecAudioForCTC` "
                "(`config.json`, `model.safetensors`) and a `Wav2Vec2Processor` (`preprocessor_config.json`, "
                "`vocab.json`, `tokenizer_config.json`)")
    else:
        load = ("from transformers import Data2VecAudioModel, Wav2Vec2FeatureExtractor\n"
                "model = Data2VecAudioModel.from_pretrained(OUT_DIR).eval()\n"
                "extractor = Wav2Vec2FeatureExtractor.from_pretrained(OUT_DIR)\n"
                "hidden = model(**extractor(waveform, sampling_rate=16000, return_tensors=\"pt\"), "
                "output_hidden_states=True).hidden_states")
        what = ("a pre-trained model: `Data2VecAudioModel` (`config.json`, `model.safetensors`) and its "
                "`Wav2Vec2FeatureExtractor` (`preprocessor_config.json`)")
    return f"""# DinoSR model for Hugging Face transformers

Exported by `python -m dinosr_espnet.bin.export_hf` from `{source.path}` (`{source.checkpoint.name}`):
{what}. No file here is a pickle; nothing was downloaded.

```python
{load}
```

- Input: 16 kHz mono waveform; the feature extractor standardises each utterance (zero mean, unit
  variance over its samples) when `do_normalize` is true, as the model was trained.
- Frames: 50 Hz; frame t covers samples [320 t, 320 t + 400) for the standard CNN
  (T = (N - 400) // 320 + 1). `hidden_states[0]` is the Transformer input (after the positional
  convolution and LayerNorm), `hidden_states[l]` the output of layer l.
- Padding: dinosr_espnet re-zeroes padded frames before every positional-convolution block;
  transformers (like fairseq) only before the first. An utterance alone, or the longest one in a padded
  batch, gets the same hidden states as in dinosr_espnet; shorter utterances of a padded batch differ
  slightly. Batch utterances of equal length (or one at a time) to get exactly the original features.
{extra}"""


def _ctc_readme_notes() -> str:
    return """
## Transcripts

`processor.batch_decode(logits.argmax(-1))` is the greedy CTC transcript: repeats merged, the blank
(ESPnet `<blank>`, the tokenizer's pad token) dropped, the word boundary turned into a space. The ids are
the ESPnet token list's; its word boundary (`<space>`) is spelled `|` in `vocab.json`, because transformers
does not reload any other `word_delimiter_token`. Two corner
cases print differently from dinosr_espnet's greedy decoder: a word boundary, blank, word boundary run
gives two spaces here (dinosr_espnet collapses them: `" ".join(text.split())`), and a frame whose best
token is `<sos/eos>` (never a CTC target, so a trained model does not choose it) prints literally here.
Do not pass `skip_special_tokens=True`: transformers then drops the blank before merging repeats.
"""


HUGGING_FACE_WORD_DELIMITER = "|"


def _tokenizer_for(token_list: List[str], directory: Path):
    """Wav2Vec2CTCTokenizer whose ids are exactly the ESPnet token list's indices.

    The word boundary is spelled ``|`` in the exported vocabulary whatever the token list calls it
    (ESPnet ``<space>``): transformers 5 writes a custom ``word_delimiter_token`` to tokenizer_config.json
    but does not pass it back when loading (the tokenizer comes back with its default ``|``).
    """
    transformers = require_transformers()
    from dinosr_espnet.decode.tokens import SOS_EOS, UNKNOWN, ctc_tokens

    tokens = ctc_tokens(token_list)  # ValueError naming a missing <blank> / word boundary / duplicates
    vocabulary = list(tokens.tokens)
    delimiter = HUGGING_FACE_WORD_DELIMITER
    if delimiter in vocabulary and vocabulary.index(delimiter) != tokens.boundary_index:
        raise ExportError(f"the token list has both {tokens.boundary!r} (word boundary) and {delimiter!r}; "
                          f"transformers needs {delimiter!r} as the boundary")
    vocabulary[tokens.boundary_index] = HUGGING_FACE_WORD_DELIMITER
    vocab_file = directory / "vocab.json"
    vocab_file.write_text(json.dumps({token: index for index, token in enumerate(vocabulary)}, indent=1,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
    special = SOS_EOS if SOS_EOS in vocabulary else None
    tokenizer = transformers.Wav2Vec2CTCTokenizer(
        str(vocab_file), unk_token=UNKNOWN if UNKNOWN in vocabulary else None,
        pad_token=vocabulary[tokens.blank_index], word_delimiter_token=HUGGING_FACE_WORD_DELIMITER,
        bos_token=special, eos_token=special, do_lower_case=False)
    vocab_file.unlink()  # save_pretrained writes its own copy
    wrong = [token for index, token in enumerate(vocabulary) if tokenizer.convert_tokens_to_ids(token) != index]
    if wrong or len(tokenizer) != len(vocabulary):
        raise ExportError(f"the transformers tokenizer does not reproduce the token list's ids (tokens {wrong[:5]}, "
                          f"{len(tokenizer)} ids for {len(vocabulary)} tokens)")
    return tokenizer, tokens


def _check_asr_config(model_dir: ModelDir) -> None:
    """ExportError naming an ESPnet ASR config field the export cannot reproduce."""
    config = model_dir.config
    where = model_dir.config_path
    expected = {"frontend": (None, "none"), "normalize": (None, "none"), "preencoder": (None, "none"),
                "postencoder": (None, "none"), "token_type": ("char",)}
    for key, allowed in expected.items():
        if config.get(key) not in allowed:
            raise ExportError(f"{where}: {key} is {config.get(key)!r}; the export supports "
                              f"{' or '.join(repr(value) for value in allowed)} only")


def _export_pretrained(model_dir: ModelDir, directory: Path, encoder: str) -> Dict[str, Any]:
    check_exportable(raw_model_conf(model_dir), str(model_dir.config_path))
    model = load_pretrained(model_dir)
    config = model.config
    state = dict(model.student.state_dict())
    if encoder == "teacher":
        state.update({f"encoder.{key}": value for key, value in model.teacher.encoder.state_dict().items()})
    hf_model = build_hugging_face_model(config, state)
    hf_model.save_pretrained(directory)
    feature_extractor_for(config).save_pretrained(directory)
    has_codebooks = hasattr(model, "codebooks") and hasattr(model, "heads")
    extra = ""
    if has_codebooks:
        from safetensors.torch import save_file

        tensors = codebook_tensors(model)
        save_file(tensors, str(directory / "codebooks.safetensors"),
                  metadata={"format": "dinosr_codebooks", "version": "1", "encoder": encoder,
                            "target": "feed_forward output of the layer, instance-normalised over time, eps 1e-5"})
        teacher_note = (": the hooks above give exactly the pre-training targets" if encoder == "teacher" else
                        " (export with `--encoder teacher` for exactly the pre-training targets; the student's "
                        "layers give close but not identical units)")
        extra = UNITS_README.format(layers=tensors["layers"].tolist(), encoder=f"{encoder} Transformer",
                                    teacher_note=teacher_note)
    (directory / "README.md").write_text(_readme(PRETRAINED, model_dir, extra), encoding="utf-8")
    return {"kind": PRETRAINED, "model": model_dir.config.get("model"), "encoder": encoder,
            "codebooks": has_codebooks}


def _export_ctc(model_dir: ModelDir, directory: Path) -> Dict[str, Any]:
    _check_asr_config(model_dir)
    transformers = require_transformers()
    asr_model, token_list = load_ctc(model_dir)
    encoder = asr_model.encoder
    config = encoder.config
    check_exportable(config.to_dict(), f"{model_dir.config_path} (encoder architecture)")
    tokenizer, tokens = _tokenizer_for(token_list, directory)
    ctc_conf = model_dir.config.get("ctc_conf") or {}
    hf_config = transformers.Data2VecAudioConfig(
        **hugging_face_config_values(config), mask_time_prob=float(encoder.mask_prob),
        mask_feature_prob=float(encoder.mask_channel_prob), mask_feature_length=int(encoder.mask_channel_length),
        vocab_size=len(tokens), pad_token_id=tokens.blank_index,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        final_dropout=float(ctc_conf.get("dropout_rate", 0.0)),
        ctc_zero_infinity=bool(ctc_conf.get("zero_infinity", True)), ctc_loss_reduction="sum")
    hf_model = transformers.Data2VecAudioForCTC(hf_config)
    state = student_state_to_hugging_face(encoder.student.state_dict(), prefix="data2vec_audio.")
    state["lm_head.weight"] = asr_model.ctc.ctc_lo.weight.detach().clone()
    state["lm_head.bias"] = asr_model.ctc.ctc_lo.bias.detach().clone()
    load_strictly(hf_model, state)
    hf_model.eval().save_pretrained(directory)
    processor = transformers.Wav2Vec2Processor(feature_extractor=feature_extractor_for(config), tokenizer=tokenizer)
    processor.save_pretrained(directory)
    (directory / "README.md").write_text(_readme(CTC, model_dir, _ctc_readme_notes()), encoding="utf-8")
    return {"kind": CTC, "vocab_size": len(tokens), "blank": tokens.tokens[tokens.blank_index],
            "word_delimiter": f"{tokens.boundary} (written {HUGGING_FACE_WORD_DELIMITER!r})"}


def export_model(model_dir: Path | str, out_dir: Path | str, checkpoint: Optional[str] = None,
                 encoder: str = "student", overwrite: bool = False) -> Dict[str, Any]:
    """Export ``model_dir`` (pre-trained or fine-tuned CTC) to ``out_dir``; returns a summary.

    ``encoder``: for a pre-trained model, ``student`` (what fine-tuning starts from) or ``teacher``
    (the student's front end with the EMA teacher's Transformer: the network that makes the codebook
    targets). ``out_dir`` appears complete or not at all.
    """
    require_transformers()
    if encoder not in ("student", "teacher"):
        raise ExportError(f"--encoder must be student or teacher, not {encoder!r}")
    source = inspect_model_dir(model_dir, checkpoint)
    if source.kind == CTC and encoder != "student":
        raise ExportError(f"{source.config_path}: a fine-tuned CTC model has no teacher (--encoder teacher is for "
                          f"pre-trained models)")
    with atomic_output_dir(Path(out_dir), overwrite) as directory:
        summary = (_export_ctc(source, directory) if source.kind == CTC
                   else _export_pretrained(source, directory, encoder))
        summary.update(source=str(source.path), checkpoint=str(source.checkpoint))
        (directory / "export.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["files"] = sorted(path.name for path in Path(out_dir).iterdir())
    return summary


__all__ = ["ExportError", "ModelDirError", "STUDENT_TO_HUGGING_FACE", "build_hugging_face_model",
           "check_exportable", "export_model", "hugging_face_config_values", "student_state_to_hugging_face"]
