"""A structlog logger that imports structlog on first use.

``import structlog`` costs ~15 ms (logging, pickle, datetime, its dev renderer); the modules
of a container's start path log only rarely (debug details, warnings about leftovers).
``logger()`` stands in for ``structlog.get_logger()``: calls are forwarded to structlog's
logger, created at the first call. When the application has announced the level it
configured structlog with (:func:`set_level`, called by the CLI), calls below it return at
once without importing structlog; otherwise (an embedder's own structlog setup) every call
goes through to structlog, whose configuration decides.
"""

from __future__ import annotations

from typing import Any

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50

# the level the application configured structlog with (cli.main); 0: not announced
_configured = [0]


def set_level(level: int) -> None:
    """The application configured structlog to drop events below ``level`` (logging's
    numbers): loggers of this module skip such calls without importing structlog."""
    _configured[0] = level


class LazyLogger:
    """``structlog.get_logger(*args)``, made when something is logged."""

    __slots__ = ("_args", "_logger")

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._logger: Any = None

    def _get(self) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(*self._args)
        return self._logger

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if _configured[0] > DEBUG:
            return None
        return self._get().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if _configured[0] > INFO:
            return None
        return self._get().info(event, *args, **kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if _configured[0] > WARNING:
            return None
        return self._get().warning(event, *args, **kw)

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if _configured[0] > ERROR:
            return None
        return self._get().error(event, *args, **kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if _configured[0] > ERROR:
            return None
        return self._get().exception(event, *args, **kw)

    def __getattr__(self, name: str) -> Any:  # bind, new, msg, critical …
        return getattr(self._get(), name)


def logger(*args: Any) -> LazyLogger:
    """Like ``structlog.get_logger(*args)``, without importing structlog until needed."""
    return LazyLogger(*args)


__all__ = ["LazyLogger", "logger", "set_level"]
