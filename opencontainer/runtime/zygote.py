"""A runtime step started ahead of need: ``python -I -S step.py zygote``.

A container's process usually begins with a Python step (runtime/native.py for the native
backend; the old-proot ENOSYS wrapper runtime/seccomp.py in front of proot), and starting that
interpreter is ~10-20 ms of every container start, exec and build step. The engine service
keeps one of these processes started, its modules imported, waiting (engine/zygotes.py). When a
container starts, the service hands it the command the container would have been started with
(its argv, environment and working directory, one JSON document on stdin, then EOF), and it
carries that command out as that command would have:

- ``env -i NAME=VALUE... CMD``: the environment becomes exactly those variables;
- ``PYTHON [-I|-S|-P...] .../runtime/step.py native ARGS``: :func:`native.main` here;
- ``PYTHON [-I|-S|-P...] .../runtime/seccomp.py ARGS``: :func:`seccomp.main` here (filter,
  then exec of the rest);
- anything else is exec'd (PATH searched in the command's environment).

Only this copy's own scripts and only the same interpreter are run in-process; the rest is an
``exec``, so the worst a mismatch costs is the time saved. Its stdin becomes /dev/null before
the command runs, as a container started without ``-i`` has. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

HERE = os.path.dirname(os.path.realpath(__file__))
PYTHON_FLAGS = frozenset(("-I", "-S", "-P", "-E", "-s", "-B", "-u"))
EXIT_SETUP = 125


def _read_request() -> dict[str, object] | None:
    data = b""
    while chunk := os.read(0, 65536):
        data += chunk
    if not data:
        return None  # not needed after all: the service closed our stdin
    req = json.loads(data)
    return req if isinstance(req, dict) else None


def _env_i(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """``env -i NAME=VALUE... CMD...``: (the environment, CMD...); None: not that form."""
    if len(argv) < 3 or os.path.basename(argv[0]) != "env" or argv[1] != "-i":
        return None
    env: dict[str, str] = {}
    rest = list(argv[2:])
    while rest and "=" in rest[0] and not rest[0].startswith("-"):
        name, _, value = rest.pop(0).partition("=")
        env[name] = value
    return (env, rest) if rest else None


def _our_script(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """``PYTHON [flags] .../runtime/NAME.py ARGS`` of this interpreter and this copy: (NAME,
    ARGS); None otherwise."""
    if not argv or os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        return None
    i = 1
    while i < len(argv) and argv[i] in PYTHON_FLAGS:
        i += 1
    if i >= len(argv) or os.path.dirname(os.path.realpath(argv[i])) != HERE:
        return None
    return os.path.basename(argv[i]).removesuffix(".py"), list(argv[i + 1:])


def _exec(argv: Sequence[str], env: dict[str, str]) -> int:
    """``argv`` exec'd with exactly ``env`` (native.py's PATH search, signals reset, 127/126
    and a sentence on failure)."""
    from opencontainer.runtime import native

    os.environ.clear()
    os.environ.update(env)
    return native.execvp(argv)


def carry_out(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run ``argv`` with ``env`` as a new process would (see the module docstring)."""
    argv = list(argv)
    while True:
        plain = _env_i(argv)
        if plain is not None:
            env, argv = plain
            continue
        script = _our_script(argv)
        if script is None:
            return _exec(argv, env)
        name, args = script
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [os.path.join(HERE, f"{name}.py"), *args]
        if name == "step" and args[:1] == ["native"]:
            from opencontainer.runtime import native

            return native.main(args[1:])
        if name == "seccomp":
            from opencontainer.runtime import seccomp

            return seccomp.main(args)
        return _exec(argv, env)


def main(argv: Sequence[str] | None = None) -> int:
    # what a request may run, imported now: this is the time saved (nsexec and netns: what
    # native.py imports when it mounts an overlay and joins a project's network)
    from opencontainer.runtime import native, netns, nsexec, seccomp  # noqa: F401

    req = _read_request()
    if req is None:
        return 0
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    try:
        os.chdir(str(req.get("cwd") or "/"))
        cmd = [str(a) for a in req.get("argv") or ()]  # type: ignore[attr-defined]
        env = {str(k): str(v) for k, v in dict(req.get("env") or {}).items()}  # type: ignore[call-overload]
    except (OSError, TypeError, ValueError) as exc:
        sys.stderr.write(f"opencontainer: cannot start the container's process: {exc}\n")
        return EXIT_SETUP
    if not cmd:
        return EXIT_SETUP
    return carry_out(cmd, env)


if __name__ == "__main__":
    sys.exit(main())
