"""Shared pytest configuration.

- ``anyio_backend`` (session): ``"asyncio"`` — the only backend OpenContainer supports.
- The integration fixtures (real registry, auth registries, test images, proot binaries,
  CLI helpers) come from :mod:`tests.fixtures.plugin`; see the docstring of each fixture.
- Under ``CI`` (``.ci/run`` exports ``CI=true``) a skipped test is a failed test: a missing
  fixture, tool or kernel feature must not pass silently. The one exception is a test marked
  ``opt_in`` (the image benchmark, which runs only when asked for).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.fixtures.plugin"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    from tests.fixtures.plugin import in_ci

    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("opt_in") is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI, which counts as a failure: {reason}"
