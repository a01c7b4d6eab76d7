"""pytest plugin (loaded with ``-p`` from pyproject): undo the CLI's structlog configuration.

Tests call ``opencontainer.cli.main.main()`` in-process; main configures structlog as the
application should. Reset it after every test so ``structlog.testing.capture_logs`` in later
tests sees every event.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
