"""Running OpenContainer's side: the CLI as a subprocess, or library calls when that is fairer.

Each helper first checks that the part of the product it needs exists in this checkout; if not
it raises :class:`NotAvailable` ("not implemented"), so the harness works while the product
is still being written.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pwd
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .core import NotAvailable, SideFailed, one_line

# CLI command -> (module, function) that must exist for the command to work.
_CLI = {
    "pull": ("opencontainer.cli.images", "run_pull"),
    "images": ("opencontainer.cli.images", "run_images"),
    "run": ("opencontainer.cli.containers", "run_run"),
    "create": ("opencontainer.cli.containers", "run_create"),
    "rm": ("opencontainer.cli.containers", "run_rm"),
    "up": ("opencontainer.cli.compose", "run_up"),
    "down": ("opencontainer.cli.compose", "run_down"),
    "ps": ("opencontainer.cli.compose", "run_ps"),
    "config": ("opencontainer.cli.compose_config", "run_config"),
    "version": ("opencontainer.cli.version", "run_version"),
    "info": ("opencontainer.cli.version", "run_info"),
}


def module_missing(name: str, attr: str | None = None) -> str | None:
    """None when ``name`` (and ``name.attr``) import; else the reason, for ``n/a (...)``."""
    try:
        if importlib.util.find_spec(name) is None:
            return "not implemented"
    except ModuleNotFoundError:
        return "not implemented"
    if attr is None:
        return None
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return f"not importable: {one_line(str(exc), 80)}"
    except Exception as exc:  # a half-written module: say so instead of crashing
        return f"not importable: {type(exc).__name__}"
    if not hasattr(module, attr):
        return "not implemented"
    return None


def require_module(name: str, attr: str | None = None) -> None:
    reason = module_missing(name, attr)
    if reason is not None:
        raise NotAvailable(reason)


def require_cli(*commands: str) -> None:
    for command in commands:
        module, func = _CLI[command]
        require_module(module, func)


def oc_argv(*args: str) -> list[str]:
    """Our CLI as users start it: the ``opencontainer`` script of this Python's environment
    (``python -m`` adds runpy's imports, ~4 ms a call), else ``python -m opencontainer``."""
    script = Path(sys.executable).parent / "opencontainer"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), *args]
    return [sys.executable, "-m", "opencontainer", *args]


def run_cmd(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 900,
    what: str = "",
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (as ``user``: see :func:`user_switch`); raise :class:`SideFailed` with the
    last stderr line when it fails."""
    run_env = dict(env)
    switch: dict[str, object] = {}
    if user is not None:
        switch = user_switch(user, run_env)
    try:
        proc: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            list(argv),
            env=run_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **switch,
        )
    except subprocess.TimeoutExpired as exc:
        raise SideFailed(f"{what or argv[0]} timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        msg = one_line(proc.stderr or proc.stdout)
        raise SideFailed(f"{what or Path(argv[0]).name} exit {proc.returncode}: {msg}")
    return proc


def user_switch(user: str, env: dict[str, str]) -> dict[str, object]:
    """``subprocess.run`` keywords that start a command as ``user``, and ``env`` given the
    variables ``runuser -u`` would set. The forked child switches ids itself before its exec:
    ``runuser`` costs ~6 ms of PAM session per call on this machine, which a timed side would
    otherwise pay and its peers (run as the harness's user) not."""
    pw = pwd.getpwnam(user)
    env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user, SHELL=pw.pw_shell or "/bin/sh")
    return {"user": pw.pw_uid, "group": pw.pw_gid,
            "extra_groups": os.getgrouplist(user, pw.pw_gid)}


def oc(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``opencontainer ARGS`` (checks that the command is implemented first)."""
    if args and args[0] in _CLI:
        require_cli(args[0])
    return run_cmd(oc_argv(*args), env, cwd, timeout, what=f"opencontainer {args[0]}")


def oc_as(
    user: str | None, *args: str, env: Mapping[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """:func:`oc` run as ``user`` (None: as ourselves)."""
    if args and args[0] in _CLI:
        require_cli(args[0])
    return run_cmd(oc_argv(*args), env, None, timeout, what=f"opencontainer {args[0]}",
                   user=user)


def container_dir(home: Path, name: str) -> Path:
    """The folder of standalone container ``name`` with ``OPENCONTAINER_HOME=home``: all there
    is of it (``opencontainer rm -f NAME`` without ``-v`` deletes just this folder)."""
    try:
        from opencontainer.paths import Paths
    except ImportError:
        return home / "data" / "containers" / name
    return Paths.from_env({"OPENCONTAINER_HOME": str(home)}).containers / name
