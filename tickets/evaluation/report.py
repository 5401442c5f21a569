"""report.json and report.html (inline SVG charts, no script, no external resource) from the results."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrieval._storage import atomic_write, atomic_write_json
from tickets.evaluation.languages import language_html
from tickets.evaluation.metrics import Outcome, percentiles, summarise
from tickets.evaluation.runner import STAGES
from tickets.evaluation.suggestion_metrics import record_from_row, summarise_suggestions
from tickets.evaluation.suggestion_report import suggestion_section
from tickets.evaluation.unknown_topics import unknown_html

COLOURS = {"retrieval": "#2b6cb0", "model": "#c05621", "combined": "#2f855a"}


def mode_report(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every field of one mode's report, from its per-ticket results."""
    outcomes = [
        Outcome(
            truth=row["truth"],
            predicted=row["predicted"],
            confidence=float(row["confidence"]),
            team_truth=row.get("team_truth"),
            team_predicted=row.get("team_predicted"),
        )
        for row in rows
    ]
    report = summarise(outcomes)
    n = max(len(rows), 1)
    hit_rows = [row for row in rows if row.get("hit_labels") is not None]
    report["retrieval_label_match_at_1"] = (
        sum(bool(row["hit_labels"]) and row["hit_labels"][0] == row["truth"] for row in hit_rows)
        / len(hit_rows)
        if hit_rows
        else None
    )
    report["retrieval_label_match_at_5"] = (
        sum(row["truth"] in row["hit_labels"][:5] for row in hit_rows) / len(hit_rows) if hit_rows else None
    )
    report["latency_ms"] = {
        stage: percentiles([float(row["latency_ms"].get(stage, 0.0)) for row in rows])
        for stage in (*STAGES, "total")
    }
    report["tokens_per_ticket"] = {
        "prompt": sum(int(row.get("prompt_tokens", 0)) for row in rows) / n,
        "completion": sum(int(row.get("completion_tokens", 0)) for row in rows) / n,
    }
    report["cost_per_ticket"] = sum(float(row.get("cost_usd", 0.0)) for row in rows) / n
    report["energy_wh_per_ticket"] = sum(float(row.get("energy_wh", 0.0)) for row in rows) / n
    report["model_consulted_share"] = sum(bool(row.get("consulted")) for row in rows) / n
    report["degraded_share"] = sum(bool(row.get("degraded")) for row in rows) / n
    report["run_seconds"] = sum(float(row["latency_ms"].get("total", 0.0)) for row in rows) / 1000.0
    if any("suggestion" in row for row in rows):
        report["suggestion"] = summarise_suggestions(
            [record_from_row(row.get("suggestion") or {"abstained": True}) for row in rows]
        )
    return report


def write_reports(output: Path, report: dict[str, Any]) -> None:
    atomic_write_json(output / "report.json", report)
    atomic_write(output / "report.html", [render_html(report).encode("utf-8")])


# --- HTML ----------------------------------------------------------------------------------------------

E = html.escape


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{E(title)}"><title>{E(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="#fff"/>{body}</svg>'
    )


def _axes(x0: int, y0: int, w: int, h: int, x_label: str, y_label: str) -> str:
    ticks = "".join(
        f'<line x1="{x0}" y1="{y0 - h * t / 4:.1f}" x2="{x0 + w}" y2="{y0 - h * t / 4:.1f}" stroke="#eee"/>'
        f'<text x="{x0 - 4}" y="{y0 - h * t / 4 + 4:.1f}" font-size="10" text-anchor="end">{t / 4:.2f}</text>'
        f'<text x="{x0 + w * t / 4:.1f}" y="{y0 + 14}" font-size="10" text-anchor="middle">{t / 4:.2f}</text>'
        for t in range(5)
    )
    return (
        f'{ticks}<line x1="{x0}" y1="{y0}" x2="{x0 + w}" y2="{y0}" stroke="#333"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - h}" stroke="#333"/>'
        f'<text x="{x0 + w / 2}" y="{y0 + 30}" font-size="11" text-anchor="middle">{E(x_label)}</text>'
        f'<text x="12" y="{y0 - h / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {y0 - h / 2})">{E(y_label)}</text>'
    )


def _legend(modes: Sequence[str], x: int, y: int) -> str:
    return "".join(
        f'<rect x="{x}" y="{y + 16 * i}" width="10" height="10" fill="{COLOURS.get(m, "#555")}"/>'
        f'<text x="{x + 14}" y="{y + 9 + 16 * i}" font-size="11">{E(m)}</text>'
        for i, m in enumerate(modes)
    )


def reliability_chart(modes: Mapping[str, Mapping[str, Any]]) -> str:
    x0, y0, w, h = 50, 260, 300, 230
    body = _axes(x0, y0, w, h, "confidence", "accuracy")
    body += f'<line x1="{x0}" y1="{y0}" x2="{x0 + w}" y2="{y0 - h}" stroke="#999" stroke-dasharray="4"/>'
    for mode, report in modes.items():
        colour = COLOURS.get(mode, "#555")
        points = [
            (x0 + w * b["confidence"], y0 - h * b["accuracy"], b["count"]) for b in report["reliability"]
        ]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body += f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            body += "".join(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{n} tickets</title></circle>'
                for x, y, n in points
            )
    body += _legend(list(modes), x0 + w + 10, 40)
    return _svg(460, 300, body, "Reliability diagram: accuracy per confidence bin")


def coverage_chart(modes: Mapping[str, Mapping[str, Any]]) -> str:
    x0, y0, w, h = 50, 260, 300, 230
    body = _axes(x0, y0, w, h, "share routed automatically (coverage)", "precision of routed tickets")
    y95 = y0 - h * 0.95
    body += (
        f'<line x1="{x0}" y1="{y95:.1f}" x2="{x0 + w}" y2="{y95:.1f}" stroke="#c53030" stroke-dasharray="3"/>'
    )
    for mode, report in modes.items():
        curve = report["coverage_curve"]
        if curve:
            path = " ".join(f"{x0 + w * p['coverage']:.1f},{y0 - h * p['precision']:.1f}" for p in curve)
            colour = COLOURS.get(mode, "#555")
            body += f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
    body += _legend(list(modes), x0 + w + 10, 40)
    return _svg(460, 300, body, "Precision of automatically routed tickets against coverage")


def f1_chart(modes: Mapping[str, Mapping[str, Any]]) -> str:
    labels = sorted({label for report in modes.values() for label in report["per_class"]})
    names = list(modes)
    row_h = 6 + 8 * len(names)
    x0, w = 190, 300
    height = 30 + row_h * len(labels)
    body = ""
    for i, label in enumerate(labels):
        y = 20 + i * row_h
        body += (
            f'<text x="{x0 - 6}" y="{y + row_h / 2 + 3:.1f}" font-size="10" text-anchor="end">'
            f"{E(label[:32])}</text>"
        )
        for j, mode in enumerate(names):
            f1 = modes[mode]["per_class"].get(label, {}).get("f1", 0.0)
            body += (
                f'<rect x="{x0}" y="{y + 8 * j}" width="{w * f1:.1f}" height="7" '
                f'fill="{COLOURS.get(mode, "#555")}">'
                f"<title>{E(label)} ({E(mode)}): F1 {f1:.3f}</title></rect>"
            )
    body += f'<line x1="{x0}" y1="15" x2="{x0}" y2="{height - 10}" stroke="#333"/>'
    body += _legend(names, x0 + w + 10, 20)
    return _svg(x0 + w + 110, height, body, "F1 per class")


def latency_chart(modes: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(modes)
    x0, w = 80, 320
    peak = max((r["latency_ms"][s]["p50"] for r in modes.values() for s in STAGES), default=1.0) or 1.0
    height = 30 + len(STAGES) * (6 + 8 * len(names))
    body = ""
    for i, stage in enumerate(STAGES):
        y = 20 + i * (6 + 8 * len(names))
        body += f'<text x="{x0 - 6}" y="{y + 10}" font-size="10" text-anchor="end">{E(stage)}</text>'
        for j, mode in enumerate(names):
            p50 = modes[mode]["latency_ms"][stage]["p50"]
            body += (
                f'<rect x="{x0}" y="{y + 8 * j}" width="{w * p50 / peak:.1f}" height="7" '
                f'fill="{COLOURS.get(mode, "#555")}">'
                f"<title>{E(stage)} ({E(mode)}): p50 {p50:.1f} ms</title></rect>"
            )
    body += _legend(names, x0 + w + 10, 20)
    return _svg(x0 + w + 110, height, body, f"Median latency per stage (longest bar {peak:.1f} ms)")


def _summary_table(modes: Mapping[str, Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{E(m)}</th>" for m in modes)
    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("tickets", lambda r: str(r["n"])),
        ("accuracy", lambda r: _pct(r["accuracy"])),
        ("macro F1", lambda r: _num(r["macro_f1"])),
        ("team accuracy", lambda r: _pct(r["team_accuracy"])),
        ("calibration error (ECE)", lambda r: _num(r["ece"])),
        ("coverage at 95% precision", lambda r: _pct(r["coverage_at_precision_95"])),
        ("top-1 neighbour has the label", lambda r: _pct(r["retrieval_label_match_at_1"])),
        ("a top-5 neighbour has the label", lambda r: _pct(r["retrieval_label_match_at_5"])),
        (
            "latency p50 / p95 (ms)",
            lambda r: f"{r['latency_ms']['total']['p50']:.1f} / {r['latency_ms']['total']['p95']:.1f}",
        ),
        ("model consulted", lambda r: _pct(r["model_consulted_share"])),
        (
            "tokens per ticket (prompt / completion)",
            lambda r: f"{r['tokens_per_ticket']['prompt']:.0f} / {r['tokens_per_ticket']['completion']:.0f}",
        ),
        ("cost per ticket (USD)", lambda r: f"{r['cost_per_ticket']:.6f}"),
        ("energy per ticket (Wh)", lambda r: f"{r['energy_wh_per_ticket']:.4f}"),
    ]
    body = "".join(
        f"<tr><th>{E(name)}</th>{''.join(f'<td>{E(cell(r))}</td>' for r in modes.values())}</tr>"
        for name, cell in rows
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _confusions(modes: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for mode, report in modes.items():
        items = "".join(
            f"<tr><td>{E(p['truth'])}</td><td>{E(p['predicted'])}</td><td>{p['count']}</td></tr>"
            for p in report["confusion_pairs"]
        )
        parts.append(
            f"<h3>{E(mode)}</h3><table><tr><th>true</th><th>predicted</th><th>tickets</th></tr>{items}</table>"
        )
    return "".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    modes: Mapping[str, Mapping[str, Any]] = report["modes"]
    info = report.get("run", {})
    facts = "".join(f"<li>{E(str(k))}: {E(str(v))}</li>" for k, v in info.items())
    charts = (
        f"<h2>Calibration</h2>{reliability_chart(modes)}"
        f"<h2>Coverage and precision</h2>{coverage_chart(modes)}"
        f"<h2>F1 per class</h2>{f1_chart(modes)}<h2>Latency per stage</h2>{latency_chart(modes)}"
        if modes
        else "<p>No mode was run.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard evaluation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
td{{text-align:right}}svg{{display:block;margin:0.5em 0}}</style></head><body>
<h1>Switchboard evaluation on your history</h1><ul>{facts}</ul>
<h2>Summary</h2>{_summary_table(modes)}{unknown_html(modes)}{language_html(modes)}{charts}
{suggestion_section(modes, str(info.get("embedding_model", "")))}
<h2>Most frequent mix-ups</h2>{_confusions(modes)}
</body></html>
"""
