"""Small inline SVG charts, drawn on the server: no script, no CDN, readable by screen readers.

Every chart has a <title> and an aria-label; the page shows the same numbers in a table. All text
goes through ``format_html``, so labels (team and category names) are escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
OTHER_COLOUR = "#999999"


def _n(value: float) -> str:
    """A coordinate, to one decimal (format_html turns its arguments into text before formatting)."""
    return f"{value:.1f}"


def colour(index: int) -> str:
    return PALETTE[index] if index < len(PALETTE) else OTHER_COLOUR


def _svg(width: int, height: int, title: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'preserveAspectRatio="xMinYMin meet"><title>{}</title>{}</svg>',
        width,
        height,
        title,
        title,
        body,
    )


def _join(parts: Sequence[SafeString]) -> SafeString:
    return mark_safe("".join(parts))  # noqa: S308 - every part was built by format_html


def legend(labels: Sequence[str]) -> SafeString:
    return format_html(
        '<ul class="legend">{}</ul>',
        format_html_join(
            "",
            # A fill attribute, not style="": the Content-Security-Policy allows no inline style.
            '<li><svg class="swatch" viewBox="0 0 1 1" aria-hidden="true">'
            '<rect width="1" height="1" fill="{}"/></svg>{}</li>',
            ((colour(index), label) for index, label in enumerate(labels)),
        ),
    )


def stacked_columns(
    *, title: str, columns: Sequence[str], series: dict[str, list[int]], max_series: int = 7
) -> SafeString:
    """One column per x value (a day), stacked by series (a team). Small series merge into "other"."""
    names = list(series)
    if len(names) > max_series:
        kept = names[: max_series - 1]
        other = [
            sum(values) for values in zip(*(series[name] for name in names[max_series - 1 :]), strict=True)
        ]
        series = {**{name: series[name] for name in kept}, "other": other}
        names = [*kept, "other"]
    width, height, left, bottom, top = 1000, 240, 36, 24, 8
    totals = [sum(values[position] for values in series.values()) for position in range(len(columns))]
    peak = max(totals, default=0) or 1
    plot_height = height - bottom - top
    step = (width - left) / max(len(columns), 1)
    bar = max(step * 0.8, 1.0)
    parts: list[SafeString] = [
        format_html('<text x="{}" y="{}" class="axis">{}</text>', 0, top + 8, peak),
        format_html('<text x="{}" y="{}" class="axis">0</text>', 0, height - bottom),
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="baseline"/>',
            left,
            height - bottom,
            width,
            height - bottom,
        ),
    ]
    for position, label in enumerate(columns):
        x = left + position * step
        y = float(height - bottom)
        for index, name in enumerate(names):
            value = series[name][position]
            if not value:
                continue
            h = value / peak * plot_height
            y -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                    _n(x),
                    _n(y),
                    _n(bar),
                    _n(h),
                    colour(index),
                    label,
                    value,
                    name,
                )
            )
        if len(columns) <= 14 or position % max(len(columns) // 7, 1) == 0:
            parts.append(
                format_html('<text x="{}" y="{}" class="axis">{}</text>', _n(x), height - 6, label[-5:])
            )
    return format_html("{}{}", _svg(width, height, title, _join(parts)), legend(names))


def horizontal_bars(
    *,
    title: str,
    labels: Sequence[str],
    groups: dict[str, Sequence[float]],
    value_format: Callable[[float], str] = lambda value: f"{value:g}",
) -> SafeString:
    """One row per label, one bar per group (e.g. p50 and p95), values printed at the bar's end."""
    row_height, bar_gap, left, right = 14, 2, 120, 70
    group_names = list(groups)
    per_row = len(group_names) * (row_height + bar_gap) + 8
    width, height = 440, max(per_row * len(labels), 20)
    peak = max((value for values in groups.values() for value in values), default=0) or 1
    parts: list[SafeString] = []
    for row, label in enumerate(labels):
        y0 = row * per_row
        parts.append(
            format_html('<text x="0" y="{}" class="label">{}</text>', y0 + row_height - 2, label[:18])
        )
        for index, name in enumerate(group_names):
            value = float(groups[name][row])
            y = y0 + index * (row_height + bar_gap)
            w = value / peak * (width - left - right)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {}: {}</title></rect>'
                    '<text x="{}" y="{}" class="value">{}</text>',
                    left,
                    y,
                    _n(max(w, 1.0)),
                    row_height,
                    colour(index),
                    label,
                    name,
                    value_format(value),
                    _n(left + w + 4),
                    y + row_height - 3,
                    value_format(value),
                )
            )
    chart = _svg(width, height, title, _join(parts))
    return format_html("{}{}", chart, legend(group_names)) if len(group_names) > 1 else chart


def columns(
    *, title: str, labels: Sequence[str], values: Sequence[int], highlight_from: int | None = None
) -> SafeString:
    """A simple column chart (a histogram); columns from ``highlight_from`` on in the second colour."""
    width, height, bottom, top = 440, 180, 24, 14
    peak = max(values, default=0) or 1
    step = width / max(len(values), 1)
    parts: list[SafeString] = []
    for position, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = value / peak * (height - bottom - top)
        fill = colour(1) if highlight_from is not None and position >= highlight_from else colour(0)
        x = position * step
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                '<text x="{}" y="{}" class="value">{}</text>'
                '<text x="{}" y="{}" class="axis">{}</text>',
                _n(x + 2),
                _n(height - bottom - h),
                _n(step - 4),
                _n(h),
                fill,
                label,
                value,
                _n(x + 4),
                _n(height - bottom - h - 3),
                value,
                _n(x + 2),
                height - 6,
                label,
            )
        )
    return _svg(width, height, title, _join(parts))
