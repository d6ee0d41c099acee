"""Charts for the admin, drawn on the server as SVG: no script, no internet.

Every chart has one invisible column per day carrying a `<title>`: the browser shows that
day's values when the pointer rests on it, so a reader gets exact figures without a script.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT, MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 960, 300, 80, 40, 20
PLOT_RIGHT = WIDTH - 10


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.2f}"


class _Scale:
    """Maps a value to a y coordinate, linearly from 0 or logarithmically from 1."""

    def __init__(self, top: float, *, log: bool) -> None:
        self.log = log
        self.top = top
        self.plot = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
        self.decades = max(math.ceil(math.log10(max(top, 10))), 1)

    def y(self, value: float) -> float:
        base = HEIGHT - MARGIN_BOTTOM
        if self.log:
            return base - (math.log10(max(value, 1)) / self.decades) * self.plot
        return base - (value / self.top * self.plot if self.top else 0)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            return [(10.0**power, _number(10.0**power)) for power in range(self.decades + 1)]
        return [(self.top * fraction, _number(self.top * fraction)) for fraction in (0, 0.5, 1)]


def _x(index: int, count: int) -> float:
    step = (PLOT_RIGHT - MARGIN_LEFT) / max(count - 1, 1)
    return MARGIN_LEFT + index * step


def _path(values: Sequence[float], scale: _Scale) -> str:
    return " ".join(
        f"{'M' if index == 0 else 'L'}{_x(index, len(values)):.1f},{scale.y(value):.1f}"
        for index, value in enumerate(values)
    )


def _area(values: Sequence[float], scale: _Scale) -> str:
    baseline = HEIGHT - MARGIN_BOTTOM
    last = _x(len(values) - 1, len(values))
    return f"{_path(values, scale)} L{last:.1f},{baseline} L{MARGIN_LEFT},{baseline} Z"


def line_chart(
    *,
    title: str,
    unit: str,
    days: Sequence[Any],
    areas: Sequence[tuple[str, str, Sequence[float]]],
    lines: Sequence[tuple[str, str, Sequence[float]]],
    log: bool = False,
    note: str = "",
    hover_extra: Sequence[tuple[str, Sequence[float]]] = (),
) -> str:
    """An SVG chart over days: filled areas (drawn first) and lines, with a legend, the
    first, middle and last dates, a scale (linear, or logarithmic where values of very
    different sizes must all be seen) and each day's values on hover. `hover_extra` adds
    values to the hover text that are not drawn."""
    series = [values for _, _, values in (*areas, *lines)]
    top = max((max(values, default=0) for values in series), default=0) * 1.1 or 1
    scale = _Scale(top, log=log)
    label = f"{title} ({'logarithmic scale' if log else unit})"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" class="portal-chart" '
        f'style="max-width:100%;background:#fff;color:#222">',
        "<style>.day:hover{fill:#000;fill-opacity:.08}</style>",
        f'<text x="{MARGIN_LEFT}" y="14" font-size="13" font-weight="bold">{escape(title)}'
        f"{' (logarithmic scale)' if log else ''}</text>",
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{PLOT_RIGHT}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999"/>',
    ]
    if note:
        parts.append(
            f'<text x="{PLOT_RIGHT}" y="14" font-size="11" text-anchor="end">{escape(note)}</text>'
        )
    for value, text in scale.ticks():
        y = scale.y(value)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{PLOT_RIGHT}" y2="{y:.1f}" '
            f'stroke="#eee"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{text}</text>'
        )
    parts.append(
        f'<text x="{MARGIN_LEFT - 6}" y="{HEIGHT - MARGIN_BOTTOM + 16}" font-size="11" '
        f'text-anchor="end">{escape(unit)}</text>'
    )
    for name, colour, values in areas:
        parts.append(
            f'<path d="{_area(values, scale)}" fill="{colour}" fill-opacity="0.55">'
            f"<title>{escape(name)}</title></path>"
        )
    for name, colour, values in lines:
        parts.append(
            f'<path d="{_path(values, scale)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></path>'
        )
    if days:
        count = len(days)
        width = (PLOT_RIGHT - MARGIN_LEFT) / max(count - 1, 1)
        for index in sorted({0, count // 2, count - 1}):
            anchor = "start" if index == 0 else "end" if index == count - 1 else "middle"
            parts.append(
                f'<text x="{_x(index, count):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                f'font-size="11" text-anchor="{anchor}">{days[index]}</text>'
            )
        named = [(name, values) for name, _, values in (*lines, *areas)] + list(hover_extra)
        for index, day in enumerate(days):
            figures = "; ".join(f"{name} {_number(values[index])}" for name, values in named)
            left = max(_x(index, count) - width / 2, MARGIN_LEFT)
            parts.append(
                f'<rect class="day" data-day="{day}" x="{left:.1f}" y="{MARGIN_TOP}" '
                f'width="{max(width, 1):.2f}" height="{HEIGHT - MARGIN_BOTTOM - MARGIN_TOP}" '
                f'fill="#000" fill-opacity="0"><title>{day}: {escape(figures)} '
                f"{escape(unit)}</title></rect>"
            )
    legend_x = MARGIN_LEFT
    for name, colour, _ in (*areas, *lines):
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{legend_x + 14}" y="{HEIGHT - 5}" font-size="11">{escape(name)}</text>'
        )
        legend_x += 20 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _values(timeline: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(Decimal(row[key])) for row in timeline]


def capacity_charts(timeline: Sequence[dict[str, Any]]) -> tuple[str, str, str]:
    """The three charts operators read: capacity against reservations (GPU-hours per day),
    the reservations and use on their own scale (tens of thousands of GPU-hours vanish
    against millions of capacity), and megawatts per day."""
    days = [row["day"] for row in timeline]
    committed = _values(timeline, "committed_gpu_hours")
    held = _values(timeline, "held_gpu_hours")
    used = _values(timeline, "used_gpu_hours")
    capacity = _values(timeline, "capacity_gpu_hours")
    reserved = [c + h for c, h in zip(committed, held, strict=True)]
    free = _values(timeline, "free_gpu_hours")
    gpu_hours = line_chart(
        title="Capacity and reservations per day",
        unit="GPU-hours",
        days=days,
        areas=[
            ("reserved (committed + held)", "#d9822b", reserved),
            ("committed", "#a33c1f", committed),
        ],
        lines=[("capacity", "#1f5aa3", capacity), ("used", "#2b9348", used)],
        hover_extra=[("held", held), ("free", free)],
    )
    top_capacity = max(capacity, default=0)
    top_reserved = max([*reserved, *used], default=0)
    demand = line_chart(
        title="Committed, held and used per day",
        unit="GPU-hours",
        days=days,
        areas=[("held", "#f2b56b", reserved), ("committed", "#a33c1f", committed)],
        lines=[("used", "#2b9348", used)],
        note=(
            f"capacity up to {_number(top_capacity)} GPU-hours a day, off this scale"
            if top_capacity > 1.2 * top_reserved
            else ""
        ),
        hover_extra=[("capacity", capacity), ("free", free)],
    )
    power = line_chart(
        title="Power per day",
        unit="MW",
        days=days,
        areas=[("committed MW", "#d9822b", _values(timeline, "committed_mw"))],
        lines=[("power envelope", "#1f5aa3", _values(timeline, "power_envelope_mw"))],
    )
    return gpu_hours, demand, power


def request_chart(days: Sequence[dict[str, Any]]) -> str:
    """An application's own days against what its program and its pool can still take, on
    a logarithmic scale: a request of a few hundred GPU-hours a day and a pool of millions
    are both read on it."""
    return line_chart(
        title="This request per day against what can still be taken",
        unit="GPU-hours",
        days=[row["day"] for row in days],
        areas=[("this request", "#d9822b", [float(row["share"]) for row in days])],
        lines=[
            ("program can still take", "#a33c1f", [float(row["program_free"]) for row in days]),
            ("pool can still take", "#1f5aa3", [float(row["pool_free"]) for row in days]),
        ],
        log=True,
    )
