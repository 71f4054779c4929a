"""Write a UnitAnalysis as ``units.md`` (table), ``units.json``, ``joint_counts.npz`` and PNG pictures."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dinosr_espnet.atomic_files import atomic_open, atomic_write_text
from dinosr_espnet.analysis.unit_analysis import SOURCE_DESCRIPTIONS, UNIT_SOURCES, UnitAnalysis

SOURCE_TITLES = {"codebook": "online codebook", "head": "student head", "kmeans": "offline k-means"}
COUNTS_FILE = "joint_counts.npz"


def results_rows(analysis: UnitAnalysis) -> List[Dict]:
    rows = []
    for layer in analysis.layers:
        for source in UNIT_SOURCES:
            if (source, layer) not in analysis.quality:
                continue
            rows.append({"layer": layer, "units": source, **analysis.quality[source, layer].to_dict()})
    return rows


def write_json(analysis: UnitAnalysis, path: Path, header: Dict) -> None:
    payload = {**header, "num_utterances": analysis.num_utterances, "num_frames": analysis.num_frames,
               "phones": list(analysis.phones), "layers": analysis.layers, "unit_sources": SOURCE_DESCRIPTIONS,
               "kmeans": {str(layer): details for layer, details in analysis.kmeans.items()},
               "results": results_rows(analysis)}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def markdown_table(analysis: UnitAnalysis) -> str:
    lines = ["| layer | units | active codewords | code perplexity | cluster purity | phone purity | PNMI |",
             "|---|---|---|---|---|---|---|"]
    for row in results_rows(analysis):
        lines.append(f"| {row['layer']} | {SOURCE_TITLES[row['units']]} | {row['active_codewords']} / "
                     f"{row['codebook_size']} | {row['code_perplexity']:.1f} | {row['cluster_purity']:.3f} | "
                     f"{row['phone_purity']:.3f} | {row['pnmi']:.3f} |")
    return "\n".join(lines)


def write_markdown(analysis: UnitAnalysis, path: Path, header: Dict) -> None:
    weights = "random initialisation (no weights loaded)" if header.get("random_init") else header.get("checkpoint")
    text = [f"# Unit discovery: {header.get('model_dir')}", "",
            f"- weights: {weights}",
            f"- data: {header.get('data_dir')}, {analysis.num_utterances} utterances, {analysis.num_frames} frames "
            f"(the model's frames; 20 ms alignments resampled to them) with phone labels (ARPAbet-39 + sil)",
            "- metrics (HuBERT sec. IV-F): phone purity = E_unit[max_phone p(phone|unit)], cluster purity = "
            "E_phone[max_unit p(unit|phone)], PNMI = I(phone; unit) / H(phone), code perplexity = exp(H(unit))",
            *[f"- {SOURCE_TITLES[source]}: {description}" for source, description in SOURCE_DESCRIPTIONS.items()],
            "", markdown_table(analysis), ""]
    atomic_write_text(path, "\n".join(text))


def save_counts(analysis: UnitAnalysis, path: Path) -> None:
    arrays = {f"{source}_layer{layer}": counts for (source, layer), counts in analysis.joint.items()}
    with atomic_open(path, "wb") as handle:  # a handle: numpy would append .npz to a path
        np.savez_compressed(handle, phones=np.array(analysis.phones), **arrays)


def load_counts(path: Path) -> Tuple[Tuple[str, ...], Dict[Tuple[str, int], np.ndarray]]:
    """(phones, {(source, layer): [phone, unit] counts}) from a ``joint_counts.npz``."""
    with np.load(path) as data:
        phones = tuple(str(phone) for phone in data["phones"])
        joint = {}
        for key in data.files:
            match = re.fullmatch(r"(\w+)_layer(\d+)", key)
            if match:
                joint[match.group(1), int(match.group(2))] = data[key]
    return phones, joint


def draw_unit_pictures(phones: Sequence[str], joint: Dict[Tuple[str, int], np.ndarray], output_dir: Path,
                       layers: Optional[Sequence[int]] = None) -> List[Path]:
    """Codebook-usage histogram and phone x codeword heat maps for ``layers`` (default: every layer)."""
    from dinosr_espnet.analysis.plots import plot_codebook_usage, plot_phone_unit_heatmap

    available = sorted({layer for _, layer in joint})
    written = []
    for layer in (layers or available):
        if layer not in available:
            raise ValueError(f"no units for layer {layer}; analysed layers: {available}")
        sources = [source for source in UNIT_SOURCES if (source, layer) in joint]
        usage = {SOURCE_TITLES[source]: joint[source, layer].sum(axis=0) for source in sources}
        written.append(plot_codebook_usage(usage, output_dir / f"usage_layer{layer}.png",
                                           title=f"codeword usage, layer {layer}"))
        for source in sources:
            written.append(plot_phone_unit_heatmap(
                joint[source, layer], phones, output_dir / f"phone_unit_{source}_layer{layer}.png",
                title=f"p(phone | codeword): {SOURCE_TITLES[source]}, layer {layer}"))
    return written


def unit_comparison_lines(exp_root: Path) -> List[str]:
    """RESULTS.md table of every ``exp_root/pretrain_<tag>/units_*/units.json``: PNMI and purities of the
    trained model next to the same architecture at random init (stage 8), one row per layer."""
    rows = []
    for path in sorted(Path(exp_root).glob("pretrain_*/units_*/units.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        by_layer: Dict[int, Dict[str, Dict]] = {}
        for row in payload.get("results", []):
            by_layer.setdefault(int(row["layer"]), {})[row["units"]] = row
        model = path.parent.parent.name[len("pretrain_"):]
        weights = "random init" if payload.get("random_init") else "trained"
        data_set = Path(str(payload.get("data_dir", "?"))).name
        for layer, sources in sorted(by_layer.items()):
            def pnmi(source: str) -> str:
                return f"{sources[source]['pnmi']:.3f}" if source in sources else "-"
            codebook = sources.get("codebook", {})
            purities = (f"{codebook['phone_purity']:.3f} | {codebook['cluster_purity']:.3f} | "
                        f"{codebook['active_codewords']} / {codebook['codebook_size']}") if codebook else "- | - | -"
            rows.append(f"| {model} | {weights} | {data_set} | {layer} | {pnmi('codebook')} | {pnmi('head')} | "
                        f"{pnmi('kmeans')} | {purities} |")
    if not rows:
        return []
    return ["| model | weights | set | layer | PNMI codebook | PNMI head | PNMI k-means | phone purity (codebook) | "
            "cluster purity (codebook) | active codewords |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows]
