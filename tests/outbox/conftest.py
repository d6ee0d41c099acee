"""The outbox tests use the decision tests' small site (one pool, two programs)."""

from tests.decisions.conftest import *  # noqa: F403
