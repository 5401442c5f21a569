"""The "Suggested resolutions" section of report.html: a table per mode and the coverage-quality curve
of the suggestion confidence (inline SVG, like the other charts). Every text is escaped."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

E = html.escape
COLOURS = {"retrieval": "#2b6cb0", "model": "#c05621", "combined": "#2f855a"}


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _baseline(block: Mapping[str, Any], name: str) -> str:
    found = (block.get("baselines") or {}).get(name)
    if not found:
        return "n/a"
    return f"{_num(found['mean'])} / {_pct(found['usable_share'])}"


def _table(blocks: Mapping[str, Mapping[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("tickets", lambda b: str(b["n"])),
        ("usable (similarity >= 0.8) over all tickets", lambda b: _pct(b["usable_share"])),
        ("usable among suggestions shown (precision)", lambda b: _pct(b["usable_precision"])),
        ("no suggestion (abstained)", lambda b: _pct(b["abstained_share"])),
        ("answer similarity of shown: mean / p10", lambda b: f"{_num(b['similarity']['mean'])} / "
         f"{_num(b['similarity']['p10'])}"),
        ("answer similarity before abstaining: mean",
         lambda b: _num(b["similarity_before_abstention"]["mean"])),
        ("ROUGE-L of shown", lambda b: _num(b["rouge_l"])),
        ("calibration error of the confidence (ECE)", lambda b: _num(b["ece"])),
        ("cites only retrieved tickets", lambda b: _pct(b["citation_validity"])),
        ("nearest ticket's answer: mean / usable", lambda b: _baseline(b, "nearest_ticket_answer")),
        ("best answer of the top 5 (oracle): mean / usable", lambda b: _baseline(b, "best_of_top5")),
        ("drafts asked / drafted (cut at a sentence)",
         lambda b: f"{b['drafting']['asked']} / {b['drafting']['drafted']}"
         f" ({b['drafting'].get('cut_off', 0)})"),
        ("draft tokens per ticket (prompt / completion)",
         lambda b: f"{_num(b['drafting']['prompt_tokens_per_ticket'], 0)}"
         f" / {_num(b['drafting']['completion_tokens_per_ticket'], 0)}"),
        ("draft latency per ticket (ms)", lambda b: _num(b["drafting"]["latency_ms_per_ticket"], 0)),
        ("draft cost per ticket (USD)", lambda b: _num(b["drafting"]["cost_usd_per_ticket"], 6)),
        ("drafted tickets: similarity of the draft / of the stored answer it replaced",
         lambda b: f"{_num(b['drafting']['similarity_drafted'])}"
         f" / {_num(b['drafting'].get('similarity_stored_on_drafted'))}"),
    ]  # fmt: skip
    head = "".join(f"<th>{E(mode)}</th>" for mode in blocks)
    body = "".join(
        f"<tr><th>{E(name)}</th>{''.join(f'<td>{E(cell(b))}</td>' for b in blocks.values())}</tr>"
        for name, cell in rows
    )
    fallbacks = "".join(
        f"<li>{E(mode)}: {E(reason)} ({count})</li>"
        for mode, b in blocks.items()
        for reason, count in b["drafting"]["fallbacks"].items()
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>" + (
        f"<p>Drafts not shown (the stored answer was):</p><ul>{fallbacks}</ul>" if fallbacks else ""
    )


def coverage_quality_chart(blocks: Mapping[str, Mapping[str, Any]]) -> str:
    x0, y0, w, h = 50, 260, 300, 230
    ticks = "".join(
        f'<line x1="{x0}" y1="{y0 - h * t / 4:.1f}" x2="{x0 + w}" y2="{y0 - h * t / 4:.1f}" stroke="#eee"/>'
        f'<text x="{x0 - 4}" y="{y0 - h * t / 4 + 4:.1f}" font-size="10" text-anchor="end">{t / 4:.2f}</text>'
        f'<text x="{x0 + w * t / 4:.1f}" y="{y0 + 14}" font-size="10" text-anchor="middle">{t / 4:.2f}</text>'
        for t in range(5)
    )
    body = (
        f'{ticks}<line x1="{x0}" y1="{y0}" x2="{x0 + w}" y2="{y0}" stroke="#333"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - h}" stroke="#333"/>'
        f'<text x="{x0 + w / 2}" y="{y0 + 30}" font-size="11" text-anchor="middle">share of tickets shown a '
        f"suggestion</text>"
        f'<text x="12" y="{y0 - h / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {y0 - h / 2})">usable among shown</text>'
        f'<line x1="{x0}" y1="{y0 - h * 0.95:.1f}" x2="{x0 + w}" y2="{y0 - h * 0.95:.1f}" stroke="#c53030" '
        f'stroke-dasharray="3"/>'
    )
    for i, (mode, block) in enumerate(blocks.items()):
        colour = COLOURS.get(mode, "#555")
        curve = block.get("coverage_quality_curve") or []
        if curve:
            path = " ".join(
                f"{x0 + w * p['coverage']:.1f},{y0 - h * p['usable_precision']:.1f}" for p in curve
            )
            body += f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            body += "".join(
                f'<circle cx="{x0 + w * p["coverage"]:.1f}" cy="{y0 - h * p["usable_precision"]:.1f}" r="2" '
                f'fill="{colour}"><title>confidence &gt;= {p["threshold"]:.3f}: {100 * p["coverage"]:.1f}% '
                f"shown, {100 * p['usable_precision']:.1f}% usable</title></circle>"
                for p in curve
            )
        body += (
            f'<rect x="{x0 + w + 10}" y="{40 + 16 * i}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x0 + w + 24}" y="{49 + 16 * i}" font-size="11">{E(mode)}</text>'
        )
    title = "Usable share of shown suggestions against the share shown, as the confidence threshold moves"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="460" height="300" viewBox="0 0 460 300" role="img" '
        f'aria-label="{E(title)}"><title>{E(title)}</title><rect width="460" height="300" fill="#fff"/>'
        f"{body}</svg>"
    )


def suggestion_section(modes: Mapping[str, Mapping[str, Any]], embedding_model: str) -> str:
    """The section, or "" when no mode measured suggestions (no resolution column was given)."""
    blocks = {mode: report["suggestion"] for mode, report in modes.items() if report.get("suggestion")}
    if not blocks:
        return ""
    return (
        "<h2>Suggested resolutions</h2>"
        f"<p>Answer similarity is the cosine between the embeddings ({E(embedding_model)}, MiniLM) of the "
        "suggested answer and the answer really sent; a suggestion is usable at 0.8 or more. A ticket "
        "with no suggestion (the confidence was below the threshold) counts as not usable.</p>"
        f"{_table(blocks)}<h3>Coverage and quality of the suggestion confidence</h3>"
        f"{coverage_quality_chart(blocks)}"
    )
