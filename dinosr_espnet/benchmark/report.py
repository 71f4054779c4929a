"""Benchmark figures and their two renderings: a markdown table (stdout) and JSON."""
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional


@dataclass
class Figure:
    """One reported number. ``value`` is a median over repeats after warm-up."""

    section: str
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class SectionResult:
    """A section's figures, or why it could not be measured (``status`` = "not yet measurable: ...")."""

    section: str
    figures: List[Figure] = field(default_factory=list)
    status: str = "measured"
    messages: List[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, note: str = "") -> None:
        self.figures.append(Figure(self.section, name, float(value), unit, note))


def _format_value(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1e4 or (0 < magnitude < 1e-3):
        return f"{value:.3e}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


def to_markdown(environment: Dict[str, object], settings: Dict[str, object],
                sections: List[SectionResult]) -> str:
    lines = ["# dinosr_espnet benchmark", "", "| machine / software | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in environment.items()]
    lines += ["", "| setting | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in settings.items()]
    for section in sections:
        lines += ["", f"## {section.section}", ""]
        if section.status != "measured":
            lines.append(f"**{section.status}**")
            lines.append("")
        for message in section.messages:
            lines.append(f"- {message}")
        if section.messages:
            lines.append("")
        if section.figures:
            lines += ["| figure | value | unit | note |", "|---|---:|---|---|"]
            lines += [f"| {figure.name} | {_format_value(figure.value)} | {figure.unit} | {figure.note} |"
                      for figure in section.figures]
    return "\n".join(lines) + "\n"


def to_json(environment: Dict[str, object], settings: Dict[str, object],
            sections: List[SectionResult]) -> str:
    payload = {
        "environment": environment,
        "settings": settings,
        "sections": {section.section: {"status": section.status, "messages": section.messages,
                                       "figures": {figure.name: asdict(figure) for figure in section.figures}}
                     for section in sections},
    }
    return json.dumps(payload, indent=2, default=str)
