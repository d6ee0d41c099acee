"""The benchmark framework: each benchmark measures a figure and the floor it is compared
with in the same run, and gives back rows of one table.

A benchmark is a function registered under a name; it receives the `Bench` (the run's
options and timers) and yields `Row`s:

    from tests.benchmarks.framework import Bench, Row, benchmark

    @benchmark("usage", order=10)
    def usage(bench: Bench) -> Iterator[Row]:
        ...
        yield Row(
            what="usage ingest, batches of 10,000",
            figure=api, unit="records/s",
            floor=raw, floor_what="raw COPY of the same rows",
            ratio=api / raw, target=">= 0.25",
        )

A module of benchmarks is listed in `MODULES` (tests/benchmarks/__main__.py imports them).
Each benchmark starts from an empty, migrated database of the run's own (the runner truncates
every table between benchmarks) and makes its own data; the runner prints one table at the end
and writes it to var/bench.md. Benchmarks print; they are not tests and fail on no figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# The modules whose benchmarks `make bench` runs, in this order of import.
MODULES = (
    "tests.benchmarks.usage",
    "tests.benchmarks.lists",
    "tests.benchmarks.decisions",
)


@dataclass
class Row:
    """One line of the table. `ratio` is the figure against its floor, written so that the
    `target` reads naturally (`>= 0.25` for a share of a floor's speed, `<= 1.5` for a cost
    against the cost at a small size); `floor` is None where the row compares nothing."""

    what: str
    figure: float
    unit: str
    floor: float | None = None
    floor_what: str = ""
    ratio: float | None = None
    target: str = ""
    runs: int = 1
    note: str = ""

    def met(self) -> bool | None:
        """Whether the ratio reaches the target; None when there is nothing to compare."""
        if self.ratio is None or not self.target:
            return None
        operator, _, value = self.target.partition(" ")
        limit = float(value)
        return {
            ">=": self.ratio >= limit,
            "<=": self.ratio <= limit,
            ">": self.ratio > limit,
            "<": self.ratio < limit,
        }[operator]


@dataclass
class Bench:
    """What a benchmark receives: the run's options, and helpers to time and to summarize."""

    runs: int = 5
    quick: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def timed(function: Callable[[], Any], *, runs: int, warmup: int = 3) -> list[float]:
        """Seconds of each of `runs` calls, after `warmup` calls whose times are dropped."""
        for _ in range(warmup):
            function()
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            function()
            times.append(time.perf_counter() - began)
        return times

    @staticmethod
    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    @staticmethod
    def percentile(values: Iterable[float], fraction: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Benchmark = Callable[[Bench], Iterable[Row]]


@dataclass
class Registered:
    name: str
    order: int
    function: Benchmark
    needs: tuple[str, ...]


REGISTRY: dict[str, Registered] = {}


def benchmark(
    name: str, *, order: int = 100, needs: tuple[str, ...] = ()
) -> Callable[[Benchmark], Benchmark]:
    """Register a benchmark under `name` (`make bench ONLY=name` runs it alone); lower
    `order` runs first. `needs` names services it cannot run without (`broker`)."""

    def register(function: Benchmark) -> Benchmark:
        REGISTRY[name] = Registered(name=name, order=order, function=function, needs=needs)
        return function

    return register


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "ms" or abs(value) < 100:
        text = f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,.0f}"
    return f"{text} {unit}".strip()


def table(rows: list[tuple[str, Row]]) -> str:
    """The rows as one Markdown table."""
    lines = [
        "| benchmark | what | figure | floor in the same run | ratio | target | met | runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in rows:
        floor = "—"
        if row.floor is not None:
            floor = f"{row.floor_what}: {_number(row.floor, row.unit)}"
        elif row.floor_what:
            floor = row.floor_what
        met = {True: "yes", False: "**no**", None: ""}[row.met()]
        what = f"{row.what} ({row.note})" if row.note else row.what
        ratio = "—" if row.ratio is None else f"{row.ratio:.3g}"
        lines.append(
            f"| {name} | {what} | {_number(row.figure, row.unit)} | {floor} | {ratio} "
            f"| {row.target or '—'} | {met} | {row.runs} |"
        )
    return "\n".join(lines)
