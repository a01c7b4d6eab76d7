"""Shared pytest configuration.

- ``anyio_backend`` (session): ``"asyncio"`` — the only backend OpenContainer supports.
- The integration fixtures (real registry, auth registries, test images, proot binaries,
  CLI helpers) come from :mod:`tests.fixtures.plugin`; see the docstring of each fixture.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.plugin"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
