"""Suite-wide options: `--long` runs the fuzz and soak tests for longer than CI can afford."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False,
        help="deeper fuzzing and soaking: many more examples, sessions and cycles (minutes, not seconds)",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """Whether the run asked for `--long`; bounded tests scale their work with it."""
    return bool(request.config.getoption("--long"))
