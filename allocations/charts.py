"""Charts for the admin, drawn on the server as SVG: no script, no internet."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT, MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 960, 300, 80, 40, 20


def _scale(value: float, top: float) -> float:
    plot = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    return HEIGHT - MARGIN_BOTTOM - (value / top * plot if top else 0)


def _path(values: Sequence[float], top: float) -> str:
    step = (WIDTH - MARGIN_LEFT - 10) / max(len(values) - 1, 1)
    return " ".join(
        f"{'M' if index == 0 else 'L'}{MARGIN_LEFT + index * step:.1f},{_scale(value, top):.1f}"
        for index, value in enumerate(values)
    )


def _area(values: Sequence[float], top: float) -> str:
    step = (WIDTH - MARGIN_LEFT - 10) / max(len(values) - 1, 1)
    baseline = HEIGHT - MARGIN_BOTTOM
    last = MARGIN_LEFT + (len(values) - 1) * step
    return f"{_path(values, top)} L{last:.1f},{baseline} L{MARGIN_LEFT},{baseline} Z"


def line_chart(
    *,
    title: str,
    unit: str,
    days: Sequence[Any],
    areas: Sequence[tuple[str, str, Sequence[float]]],
    lines: Sequence[tuple[str, str, Sequence[float]]],
) -> str:
    """An SVG chart over days: filled areas (drawn first) and lines, with a legend, the
    first, middle and last dates, and the top of the scale."""
    series = [values for _, _, values in (*areas, *lines)]
    top = max((max(values, default=0) for values in series), default=0) * 1.1 or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" style="max-width:100%;background:#fff">',
        f'<text x="{MARGIN_LEFT}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{WIDTH - 10}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999"/>',
        f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 10}" font-size="11" text-anchor="end">'
        f"{top:,.0f}</text>",
        f'<text x="{MARGIN_LEFT - 6}" y="{HEIGHT - MARGIN_BOTTOM}" font-size="11" '
        f'text-anchor="end">0 {escape(unit)}</text>',
    ]
    for name, colour, values in areas:
        parts.append(
            f'<path d="{_area(values, top)}" fill="{colour}" fill-opacity="0.55">'
            f"<title>{escape(name)}</title></path>"
        )
    for name, colour, values in lines:
        parts.append(
            f'<path d="{_path(values, top)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></path>'
        )
    if days:
        step = (WIDTH - MARGIN_LEFT - 10) / max(len(days) - 1, 1)
        for index in sorted({0, len(days) // 2, len(days) - 1}):
            anchor = "start" if index == 0 else "end" if index == len(days) - 1 else "middle"
            parts.append(
                f'<text x="{MARGIN_LEFT + index * step:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                f'font-size="11" text-anchor="{anchor}">{days[index]}</text>'
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


def capacity_charts(timeline: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The two charts operators read: GPU-hours per day and megawatts per day."""
    days = [row["day"] for row in timeline]

    def values(key: str) -> list[float]:
        return [float(Decimal(row[key])) for row in timeline]

    reserved = [float(row["committed_gpu_hours"] + row["held_gpu_hours"]) for row in timeline]
    gpu_hours = line_chart(
        title="GPU-hours per day",
        unit="GPU-h",
        days=days,
        areas=[
            ("reserved (committed + held)", "#d9822b", reserved),
            ("committed", "#a33c1f", values("committed_gpu_hours")),
        ],
        lines=[
            ("capacity", "#1f5aa3", values("capacity_gpu_hours")),
            ("used", "#2b9348", values("used_gpu_hours")),
        ],
    )
    power = line_chart(
        title="Power per day",
        unit="MW",
        days=days,
        areas=[("committed MW", "#d9822b", values("committed_mw"))],
        lines=[("power envelope", "#1f5aa3", values("power_envelope_mw"))],
    )
    return gpu_hours, power
