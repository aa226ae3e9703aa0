"""Charts drawn on the server as inline SVG: no script, no web font, scale to any screen width.

Every chart has a title (read out by screen readers), a tooltip per bar, and its numbers in a table
next to it on the page. Colours are the web app's (WCAG AA against white).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from markupsafe import Markup, escape
from numpy.typing import NDArray

COLOURS = {"primary": "#0b5cad", "ok": "#176b1f", "warn": "#b35c00", "muted": "#8a9bb0"}
#: viewBox width: on a phone (about 360 px) the 12 px text of `.chart` stays readable.
WIDTH = 420
#: (name, values, colour key) of one series; None is "no value" (drawn as nothing).
Series = tuple[str, Sequence[float | int | None], str]
Format = Callable[[float | int], str]


def _fmt(value: float, fmt: Format | None) -> str:
    if fmt is not None:
        return fmt(int(value) if float(value).is_integer() else value)
    return f"{value:g}"


def _legend(series: Sequence[Series], y: float) -> list[str]:
    parts: list[str] = []
    x = 0.0
    for name, _values, colour in series:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2" '
            f'fill="{COLOURS[colour]}"></rect>'
            f'<text x="{x + 16:.1f}" y="{y:.1f}">{escape(name)}</text>'
        )
        x += 28 + 7.5 * len(name) + (7.5 * sum(ord(c) > 0x2E80 for c in name))
    return parts


def _svg(title: str, height: float, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f"{''.join(body)}</svg>"
    )


def column_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], fmt: Format | None = None
) -> Markup:
    """Vertical bars per label, the series side by side; negative values hang below zero."""
    values = [float(v) for _, vs, _ in series for v in vs if v is not None]
    top, bottom = max([0.0, *values]), min([0.0, *values])
    span = (top - bottom) or 1.0
    left, plot_top, plot_height = 52.0, 32.0, 140.0
    zero = plot_top + plot_height * top / span
    slot = (WIDTH - left) / max(1, len(labels))
    bar = max(1.0, slot * 0.8 / max(1, len(series)))
    body = _legend(series, 12)
    body.append(
        f'<line x1="{left}" x2="{WIDTH}" y1="{zero:.1f}" y2="{zero:.1f}" '
        f'stroke="#6b6b6b" stroke-width="1"></line>'
    )
    for extreme, y in ((top, plot_top), (bottom, plot_top + plot_height)):
        if extreme:
            body.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(_fmt(extreme, fmt))}</text>"
            )
    body.append(f'<text x="{left - 6}" y="{zero + 4:.1f}" text-anchor="end">0</text>')
    every = max(1, -(-len(labels) // 5))  # at most 5 dates fit across
    for i, label in enumerate(labels):
        x0 = left + slot * i + slot * 0.1
        for s, (name, vs, colour) in enumerate(series):
            value = vs[i] if i < len(vs) else None
            if value is None:
                continue
            height = plot_height * abs(float(value)) / span
            y = zero - height if value >= 0 else zero
            body.append(
                f'<rect x="{x0 + bar * s:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{max(height, 0.5):.1f}" fill="{COLOURS[colour]}"><title>'
                f"{escape(label)} · {escape(name)}: {escape(_fmt(float(value), fmt))}"
                f"</title></rect>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{left + slot * (i + 0.5):.1f}" y="{plot_top + plot_height + 18}"'
                f' text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(title, plot_top + plot_height + 26, body)


def bar_groups(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Format | None = None,
    reference: float | None = None,
) -> Markup:
    """Horizontal bars: per label, its name on a line and one bar per series under it (long names
    fit on a phone), with an optional dashed reference line (e.g. 1, fair)."""
    values = [float(v) for _, vs, _ in series for v in vs if v is not None]
    top = max([reference or 0.0, *values]) or 1.0
    right, bar, name = 64.0, 13.0, 17.0
    scale = (WIDTH - right) / top
    body = _legend(series, 12)
    y = 22.0
    for i, label in enumerate(labels):
        body.append(f'<text x="0" y="{y + 12:.1f}">{escape(label)}</text>')
        y += name
        for s, (series_name, vs, colour) in enumerate(series):
            value = vs[i] if i < len(vs) else None
            top_y = y + bar * s
            if value is None:
                body.append(f'<text x="2" y="{top_y + bar - 2:.1f}">—</text>')
                continue
            width = max(0.5, float(value) * scale)
            shown = escape(_fmt(float(value), fmt))
            body.append(
                f'<rect x="0" y="{top_y:.1f}" width="{width:.1f}" height="{bar - 2}" '
                f'fill="{COLOURS[colour]}"><title>{escape(label)} · '
                f"{escape(series_name)}: {shown}</title></rect>"
                f'<text x="{width + 4:.1f}" y="{top_y + bar - 2:.1f}">{shown}</text>'
            )
        y += bar * len(series) + 6
    if reference is not None:
        x = reference * scale
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{y:.1f}" stroke="#1a1a1a" '
            f'stroke-width="1" stroke-dasharray="4 3"></line>'
        )
    return _svg(title, y + 2, body)


def band_chart(
    title: str, days: list[date], series: NDArray[Any], fmt: Callable[[float], str]
) -> Markup:
    """The median (line) and the 5–95% band (area) over the periods, as inline SVG."""
    width, height, left, bottom, top_margin = 640, 220, 90, 28, 10
    low, middle, high = (series[i].astype(float) for i in range(3))
    top = float(high.max()) if len(high) and high.max() > 0 else 1.0
    n = len(days)

    def x(i: int) -> float:
        return left + (width - left - 10) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top_margin + (height - bottom - top_margin) * (1 - v / top)

    area = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(high)] + [
        f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(low)))
    ]
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(middle))
    label = escape(title)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">',
        f"<title>{label}</title>",
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 10}" y2="{y(0):.1f}" stroke="currentColor" '
        'stroke-opacity="0.4"/>',
        f'<polygon points="{" ".join(area)}" fill="currentColor" fill-opacity="0.15"/>',
        f'<polyline points="{line}" fill="none" stroke="currentColor" stroke-width="2"/>',
        f'<text x="{left - 6}" y="{y(top) + 10:.1f}" text-anchor="end">{escape(fmt(top))}</text>',
        f'<text x="{left - 6}" y="{y(0):.1f}" text-anchor="end">{escape(fmt(0))}</text>',
    ]
    if days:
        parts.append(f'<text x="{left}" y="{height - 6}">{days[0].isoformat()}</text>')
        parts.append(
            f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">'
            f"{days[-1].isoformat()}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # built here from numbers and escaped text only
