"""What a scenario module provides: ``plan(ctx) -> Plan`` (sides + rows + notes + teardown)."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..core import RowSpec, Side


def _nothing() -> None:
    return None


@attrs.frozen
class Plan:
    sides: list[Side]
    rows: list[RowSpec]
    notes: list[str] = attrs.Factory(list)
    teardown: Callable[[], None] = _nothing
