"""The measuring core: sides, interleaved repetitions, medians, rows and the table.

A *side* is one way of doing a scenario's work (ours, a peer, a baseline). Each repetition runs
every side once, in turn (ours, peer, ours, peer, ...), so slow drift of the machine (page
cache, thermal, other load) hits all sides alike. A side's ``measure`` returns a mapping of
metric name -> value (seconds, or MB for memory); ``prepare`` and ``cleanup`` run around it and
are not timed. A cleanup must not delete big trees (it moves them into the trash, see
trash.py), and ``interleave``'s ``settle`` hook (the CLI: ``os.sync``) runs after it, so one
side's deletions and dirty data do not slow down the side measured next. A side that cannot
run raises :class:`NotAvailable` and is reported as ``n/a (reason)`` instead of a number; a
side that fails is reported as ``failed: ...``.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import structlog

log = structlog.get_logger()

Metrics = Mapping[str, float]


class NotAvailable(Exception):
    """This side does not exist (yet) on this machine or in this checkout."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SideFailed(Exception):
    """The side exists but its command failed; the message is one line for the table."""


def _noop() -> None:
    return None


@attrs.frozen
class Side:
    """One contender. ``measure`` does the timed work and returns its metrics."""

    name: str
    measure: Callable[[], Metrics]
    prepare: Callable[[], None] = _noop
    cleanup: Callable[[], None] = _noop


@attrs.frozen
class RowSpec:
    """One table row: ``ours`` and ``peer`` are ``(side name, metric)``; peer None = "-"."""

    scenario: str
    label: str
    ours: tuple[str, str]
    peer: tuple[str, str] | None
    peer_label: str = "-"
    unit: str = "s"
    #: the goal: ours' median (or, with ``target_ratio``, the ratio ours/peer) at most this
    target_max: float | None = None
    target_ratio: bool = False


@attrs.frozen
class SideResult:
    """All samples of one side, or why there are none."""

    name: str
    samples: Mapping[str, tuple[float, ...]]
    status: str = "ok"  # "ok" | "n/a (...)" | "failed: ..."

    def median(self, metric: str) -> float | None:
        values = self.samples.get(metric, ())
        return statistics.median(values) if values else None


@attrs.frozen
class Row:
    scenario: str
    label: str
    peer_label: str
    unit: str
    ours: float | None
    peer: float | None
    ours_status: str
    peer_status: str
    ours_samples: tuple[float, ...] = ()
    peer_samples: tuple[float, ...] = ()
    target_max: float | None = None
    target_ratio: bool = False

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.peer <= 0:
            return None
        return self.ours / self.peer

    @property
    def target(self) -> str:
        """``≤150 ms``, ``≤60 MB``, ``≤1.0x`` (ratio ours/peer), or "" when the row has none."""
        if self.target_max is None:
            return ""
        if self.target_ratio:
            text = f"{self.target_max:.2f}".rstrip("0")
            return f"≤{text}0x" if text.endswith(".") else f"≤{text}x"
        if self.unit == "s" and self.target_max < 1:
            return f"≤{self.target_max * 1000:.0f} ms"
        return f"≤{self.target_max:g} {self.unit}"

    @property
    def met(self) -> bool | None:
        """Whether the median meets the target (None: no target or no number)."""
        value = self.ratio if self.target_ratio else self.ours
        if self.target_max is None or value is None:
            return None
        return value <= self.target_max

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "label": self.label,
            "peer_label": self.peer_label,
            "unit": self.unit,
            "ours_median": self.ours,
            "peer_median": self.peer,
            "ratio": self.ratio,
            "ours_status": self.ours_status,
            "peer_status": self.peer_status,
            "ours_samples": list(self.ours_samples),
            "peer_samples": list(self.peer_samples),
            "target": self.target or None,
            "target_met": self.met,
        }


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()`` (monotonic clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleave(
    sides: Sequence[Side],
    repeat: int,
    on_sample: Callable[[str, int, Metrics | str], None] | None = None,
    settle: Callable[[], None] | None = None,
) -> dict[str, SideResult]:
    """Run ``repeat`` rounds; in each round every still-working side once. The order rotates
    by one side per round (a Latin square when ``repeat`` is a multiple of the number of
    sides): on this VM the side that follows a big writer is measurably slower whoever it is,
    so no side may always take the same place.

    ``settle`` (untimed) runs after each side's cleanup, before the next side.

    A side that raises :class:`NotAvailable` or fails is dropped from later rounds and keeps
    the samples it had (a failure after good rounds still reports ``failed``).
    """
    samples: dict[str, dict[str, list[float]]] = {s.name: {} for s in sides}
    status: dict[str, str] = {s.name: "ok" for s in sides}
    for rep in range(repeat):
        shift = rep % len(sides) if sides else 0
        for side in [*sides[shift:], *sides[:shift]]:
            if status[side.name] != "ok":
                continue
            try:
                side.prepare()
                metrics = side.measure()
            except NotAvailable as exc:
                status[side.name] = f"n/a ({exc.reason})"
            except (SideFailed, subprocess.SubprocessError, OSError) as exc:
                status[side.name] = f"failed: {one_line(str(exc))}"
            else:
                for key, value in metrics.items():
                    samples[side.name].setdefault(key, []).append(float(value))
            finally:
                try:
                    side.cleanup()
                except Exception as exc:  # cleanup must never hide the measurement
                    log.warning("bench.cleanup_failed", side=side.name, error=str(exc))
                if settle is not None:
                    settle()
            if on_sample is not None:
                got: Metrics | str = (
                    {k: v[-1] for k, v in samples[side.name].items()}
                    if status[side.name] == "ok"
                    else status[side.name]
                )
                on_sample(side.name, rep, got)
    return {
        name: SideResult(name, {k: tuple(v) for k, v in samples[name].items()}, status[name])
        for name in samples
    }


def one_line(text: str, limit: int = 160) -> str:
    """The last non-empty line of ``text``, shortened to ``limit`` characters."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else "no output"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def make_rows(specs: Sequence[RowSpec], results: Mapping[str, SideResult]) -> list[Row]:
    rows: list[Row] = []
    for spec in specs:
        ours_res = results.get(spec.ours[0])
        ours_status = ours_res.status if ours_res else "n/a (not run)"
        ours = ours_res.median(spec.ours[1]) if ours_res else None
        ours_samples = ours_res.samples.get(spec.ours[1], ()) if ours_res else ()
        if ours is None and ours_status == "ok":
            ours_status = "n/a (no samples)"
        peer_samples: tuple[float, ...] = ()
        if spec.peer is None:
            peer, peer_status = None, "-"
        else:
            peer_res = results.get(spec.peer[0])
            peer_status = peer_res.status if peer_res else "n/a (not run)"
            peer = peer_res.median(spec.peer[1]) if peer_res else None
            if peer_res:
                peer_samples = peer_res.samples.get(spec.peer[1], ())
            if peer is None and peer_status == "ok":
                peer_status = "n/a (no samples)"
        rows.append(
            Row(
                scenario=spec.scenario,
                label=spec.label,
                peer_label=spec.peer_label,
                unit=spec.unit,
                ours=ours,
                peer=peer,
                ours_status=ours_status,
                peer_status=peer_status,
                ours_samples=tuple(ours_samples),
                peer_samples=tuple(peer_samples),
                target_max=spec.target_max,
                target_ratio=spec.target_ratio,
            )
        )
    return rows


def format_value(value: float | None, status: str, unit: str) -> str:
    if value is not None:
        if unit == "s":
            return f"{value:.3f} s" if value < 100 else f"{value:.1f} s"
        return f"{value:.1f} {unit}"
    return status


def _target_cell(row: Row) -> str:
    if not row.target:
        return ""
    met = row.met
    return row.target + ("" if met is None else ": met" if met else ": MISSED")


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text (Markdown-compatible) table: scenario, ours, peer, ratio, and the target
    beside the figure it applies to (``≤150 ms: met`` / ``: MISSED``)."""
    header = ("scenario", "ours (median)", "peer", "peer (median)", "ratio ours/peer",
              "target")
    body = []
    for row in rows:
        ratio = row.ratio
        body.append(
            (
                f"{row.scenario} {row.label}",
                format_value(row.ours, row.ours_status, row.unit),
                row.peer_label,
                "-"
                if row.peer_status == "-"
                else format_value(row.peer, row.peer_status, row.unit),
                f"{ratio:.2f}" if ratio is not None else "-",
                _target_cell(row),
            )
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in body)])
