"""The examples in `examples/` are test suites of their own: each must pass, run as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("example", "tests"),
    [("celery_app", 2), ("celery_retries", 4), ("aio_pika_consumer", 3), ("pika_worker", 2), ("shop", 2)],
)
def test_example_passes(pytester, example, tests):
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", str(EXAMPLES / example))
    result.assert_outcomes(passed=tests)
