"""The decision tests' people, programs and pool, for the pages."""

from tests.decisions.conftest import (  # noqa: F401  (fixtures, used by name)
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
