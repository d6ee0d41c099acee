from __future__ import annotations

import pytest

from tests.decisions.conftest import (  # noqa: F401 - the site, program and people
    decide,
    draft,
    fast_lane,
    founder,
    pool,
    researcher,
    reviewer,
    rival,
    startup,
    today,
)

_CELLS: list[tuple[str, str, str, bool]] = []


@pytest.fixture
def matrix_cells() -> list[tuple[str, str, str, bool]]:
    """Where the matrix test records each cell it ran: route, method, role, as expected."""
    return _CELLS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _CELLS:
        return
    routes = len({cell[0] for cell in _CELLS})
    as_expected = sum(1 for cell in _CELLS if cell[3])
    terminalreporter.write_line(
        f"authorization matrix: {len(_CELLS)} cells over {routes} routes, "
        f"{as_expected} answered as declared, {len(_CELLS) - as_expected} otherwise"
    )
