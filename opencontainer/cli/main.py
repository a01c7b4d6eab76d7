"""The ``opencontainer`` command: a thin shell over the library.

Commands mirror Docker's: ``opencontainer <cmd>`` is ``docker <cmd>`` (containers and images) and
``opencontainer compose <cmd>`` is ``docker compose <cmd>``. ``up``, ``down`` and ``config`` have
no single-container meaning, so they also work at the top level as the compose commands.

Start-up must stay fast: this module imports only the standard library; a command's module is
imported only when that command runs (``opencontainer --version`` imports neither aiohttp nor the
engine).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._version import __version__

if TYPE_CHECKING:
    from .helpfmt import DockerParser

# name -> (module, help). The module defines configure_<name>(parser) and run_<name>(args, ctx).
CommandTable = dict[str, tuple[str, str]]

CONTAINER_COMMANDS: CommandTable = {
    "run": ("opencontainer.cli.containers", "Create and run a new container from an image"),
    "create": ("opencontainer.cli.containers", "Create a new container"),
    "start": ("opencontainer.cli.containers", "Start one or more stopped containers"),
    "stop": ("opencontainer.cli.containers", "Stop one or more running containers"),
    "restart": ("opencontainer.cli.containers", "Restart one or more containers"),
    "kill": ("opencontainer.cli.containers", "Kill one or more running containers"),
    "rm": ("opencontainer.cli.containers", "Remove one or more containers"),
    "ps": ("opencontainer.cli.ps", "List containers"),
    "logs": ("opencontainer.cli.containers", "Fetch the logs of a container"),
    "exec": ("opencontainer.cli.containers", "Execute a command in a running container"),
    "inspect": ("opencontainer.cli.containers", "Low-level information on a container or image"),
    "export": ("opencontainer.cli.containers", "Export a container's filesystem as a tar archive"),
    "cp": ("opencontainer.cli.containers", "Copy files between a container and the host"),
    "port": ("opencontainer.cli.containers", "List port mappings of a container"),
    "top": ("opencontainer.cli.containers", "Display the running processes of a container"),
    "wait": ("opencontainer.cli.containers", "Block until containers stop; print exit codes"),
}
IMAGE_COMMANDS: CommandTable = {
    "pull": ("opencontainer.cli.images", "Download an image from a registry"),
    "images": ("opencontainer.cli.images", "List images"),
    "rmi": ("opencontainer.cli.images", "Remove one or more images"),
    "login": ("opencontainer.cli.images", "Log in to a registry"),
    "logout": ("opencontainer.cli.images", "Log out from a registry"),
    "load": ("opencontainer.cli.images", "Load an image from a tar archive (docker save / OCI)"),
    "save": ("opencontainer.cli.images", "Save images to a tar archive"),
    "import": ("opencontainer.cli.images", "Import a root filesystem tarball as an image"),
    "tag": ("opencontainer.cli.image_ops", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "push": ("opencontainer.cli.image_ops", "Upload an image to a registry"),
    "history": ("opencontainer.cli.image_ops", "Show the history of an image"),
    "commit": ("opencontainer.cli.image_ops", "Create a new image from a container's changes"),
    "diff": ("opencontainer.cli.image_ops", "Inspect changes to files on a container's filesystem"),
    "build": ("opencontainer.cli.build", "Build an image from a Dockerfile"),
}
# command groups (``volume ls``): the module's configure_<group> adds the subcommands
GROUP_COMMANDS: CommandTable = {
    "volume": ("opencontainer.cli.volumes", "Manage volumes"),
    "network": ("opencontainer.cli.networks", "Manage networks"),
    "system": ("opencontainer.cli.system",
               "Manage OpenContainer (df, prune, events, info, service)"),
    "builder": ("opencontainer.cli.build", "Manage the build cache (prune)"),
}
MORE_CONTAINER_COMMANDS: CommandTable = {
    "stats": ("opencontainer.cli.stats", "Display a live stream of resource usage"),
    "pause": ("opencontainer.cli.container_ops", "Pause all processes of containers"),
    "unpause": ("opencontainer.cli.container_ops", "Unpause all processes of containers"),
    "rename": ("opencontainer.cli.container_ops", "Rename a container"),
    "attach": ("opencontainer.cli.container_ops", "Attach to a running container's output"),
    "events": ("opencontainer.cli.system", "Get real time events from the containers"),
    "container-prune": ("opencontainer.cli.system", "Remove all stopped containers"),
    "image-prune": ("opencontainer.cli.image_ops", "Remove unused images"),
}
# `container <cmd>` / `image <cmd>`: docker's management commands, as the top-level ones
# (name -> (command, arguments put first))
CONTAINER_GROUP: dict[str, tuple[str, tuple[str, ...]]] = {
    **{n: (n, ()) for n in ("run", "create", "start", "stop", "restart", "kill", "rm", "logs",
                            "exec", "export", "cp", "port", "top", "wait", "stats", "pause",
                            "unpause", "rename", "attach", "commit", "diff", "update")},
    "ls": ("ps", ()), "list": ("ps", ()), "ps": ("ps", ()),
    "inspect": ("inspect", ("--type", "container")),
    "prune": ("container-prune", ()),
}
IMAGE_GROUP: dict[str, tuple[str, tuple[str, ...]]] = {
    **{n: (n, ()) for n in ("pull", "push", "save", "load", "import", "tag", "history",
                            "build")},
    "ls": ("images", ()), "list": ("images", ()),
    "rm": ("rmi", ()), "remove": ("rmi", ()),
    "inspect": ("inspect", ("--type", "image")),
    "prune": ("image-prune", ()),
}
OTHER_COMMANDS: CommandTable = {
    "doctor": ("opencontainer.cli.doctor", "Check proot, its capabilities and the store"),
    "version": ("opencontainer.cli.version", "Show the version of the client and the engine"),
    "info": ("opencontainer.cli.version", "Display system-wide information"),
    "completion": ("opencontainer.cli.completion", "Print a shell completion script "
                   "(bash, zsh or fish)"),
    "supervise": ("opencontainer.cli.supervise", "(internal) run a project's supervisor"),
    "engine-service": ("opencontainer.cli.engined",
                       "(internal) the user's engine service (attached runs)"),
}
COMPOSE_COMMANDS: CommandTable = {
    "up": ("opencontainer.cli.compose", "Create and start the services (detached by default)"),
    "down": ("opencontainer.cli.compose", "Stop and remove the services"),
    "config": ("opencontainer.cli.compose_config", "Parse, resolve and render the compose file"),
    "ps": ("opencontainer.cli.compose", "List the project's containers"),
    "logs": ("opencontainer.cli.compose", "View output from the services"),
    "exec": ("opencontainer.cli.compose", "Execute a command in a running service container"),
    "run": ("opencontainer.cli.compose", "Run a one-off command on a service"),
    "start": ("opencontainer.cli.compose", "Start services"),
    "stop": ("opencontainer.cli.compose", "Stop services"),
    "restart": ("opencontainer.cli.compose", "Restart services"),
    "kill": ("opencontainer.cli.compose", "Force stop service containers"),
    "rm": ("opencontainer.cli.compose", "Remove stopped service containers"),
    "pull": ("opencontainer.cli.compose", "Pull service images"),
    "images": ("opencontainer.cli.compose", "List images used by the project's containers"),
    "top": ("opencontainer.cli.compose", "Display the running processes"),
    "port": ("opencontainer.cli.compose", "Print the public port for a port binding"),
    "ls": ("opencontainer.cli.compose", "List running compose projects"),
    "wait": ("opencontainer.cli.compose", "Block until containers of services stop"),
    "events": ("opencontainer.cli.compose", "Receive real time events from containers"),
    "create": ("opencontainer.cli.compose", "Create the services' containers, not started"),
    "scale": ("opencontainer.cli.compose", "Scale services"),
    "cp": ("opencontainer.cli.compose", "Copy files between a service container and the host"),
    "version": ("opencontainer.cli.compose", "Show the Docker Compose version information"),
    "build": ("opencontainer.cli.compose_build", "Build or rebuild services"),
    "pause": ("opencontainer.cli.compose_ops", "Pause services"),
    "unpause": ("opencontainer.cli.compose_ops", "Unpause services"),
    "attach": ("opencontainer.cli.compose_ops",
               "Attach local standard input, output, and error streams to a service's running "
               "container"),
    "stats": ("opencontainer.cli.compose_ops",
              "Display a live stream of container(s) resource usage statistics"),
    "push": ("opencontainer.cli.compose_ops", "Push service images"),
}
TOP_LEVEL_COMPOSE = ("up", "down", "config")
USAGE_ERROR = 125  # docker's exit status for a command line it cannot parse
UNKNOWN_COMMAND = 1  # `docker frobnicate`: not a usage error, a plain failure
COMPOSE_FLAGS = ("--compatibility", "--dry-run")  # the compose options without a value


class CliContext:
    """What every command gets: streams, environment, verbosity. No global state."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        verbose: int = 0,
        log_format: str = "console",
    ) -> None:
        self.env = dict(os.environ) if env is None else env
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.verbose = verbose
        self.log_format = log_format

    @property
    def paths(self) -> Any:
        from ..paths import Paths

        return Paths.from_env(self.env)

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()


COMMON_COMMANDS = ("run", "exec", "ps", "pull", "push", "images", "login", "logout", "version",
                   "info")


def _help_text(prog: str) -> str:
    """``docker --help``'s layout, generated from the command tables."""
    from .helpfmt import command_table

    every = {**CONTAINER_COMMANDS, **IMAGE_COMMANDS, **MORE_CONTAINER_COMMANDS,
             **OTHER_COMMANDS, **{n: COMPOSE_COMMANDS[n] for n in TOP_LEVEL_COMPOSE}}
    management = {"compose": "Define and run multi-container applications (docker compose)",
                  "container": "Manage containers", "image": "Manage images",
                  **{n: h for n, (_, h) in GROUP_COMMANDS.items()}}
    rest = sorted(n for n in every if n not in COMMON_COMMANDS and "-" not in n
                  and n not in ("supervise", "engine-service"))
    lines = [
        "",
        f"Usage:  {prog} [OPTIONS] COMMAND",
        "",
        "Rootless, Docker-compatible containers and Compose stacks on PRoot",
        "",
        "Common Commands:",
        *command_table((n, every[n][1]) for n in COMMON_COMMANDS),
        "",
        "Management Commands:",
        *command_table(sorted(management.items())),
        "",
        "Commands:",
        *command_table((n, every[n][1]) for n in rest),
        "",
        "Global Options:",
        "  -h, --help                Print usage",
        "      --log-format string   Log format: \"console\" (default) or \"json\"",
        "  -v, --verbose             More log output (repeat for debug)",
        "      --version             Print version information and quit",
        "",
        f"Run '{prog} COMMAND --help' for more information on a command.",
        "",
    ]
    return "\n".join(lines)


def _compose_help(prog: str) -> str:
    from .helpfmt import command_table

    lines = [
        "",
        f"Usage:  {prog} compose [OPTIONS] COMMAND",
        "",
        "Define and run multi-container applications (as docker compose)",
        "",
        "Options:",
        "      --ansi string                Control when to print ANSI control characters "
        "(\"never\"|\"always\"|\"auto\")",
        "      --compatibility              Run compose in backward compatibility mode",
        "      --dry-run                    Execute command in dry run mode",
        "      --env-file list              Specify an alternate environment file",
        "  -f, --file list                  Compose configuration files",
        "      --profile list               Specify a profile to enable",
        "      --progress string            Set type of progress output "
        "(auto, tty, plain, json, quiet)",
        "      --project-directory string   Specify an alternate working directory",
        "  -p, --project-name string        Project name",
        "",
        "Commands:",
        *command_table((n, h) for n, (_, h) in sorted(COMPOSE_COMMANDS.items())),
        "",
        f"Run '{prog} compose COMMAND --help' for more information on a command.",
        "",
    ]
    return "\n".join(lines)


def _group_help(prog: str, group: str, table: dict[str, tuple[str, tuple[str, ...]]]) -> str:
    lines = [f"Usage:  {prog} {group} COMMAND", "",
             f"Manage {group}s (docker's '{group}' commands).", "", "Commands:"]
    known = {**CONTAINER_COMMANDS, **IMAGE_COMMANDS, **MORE_CONTAINER_COMMANDS}
    lines += [f"  {n:<9} = {prog} {' '.join([t, *a])}".replace("-prune", " prune")
              for n, (t, a) in table.items() if t in known]
    return "\n".join(lines)


def add_compose_globals(parser: argparse.ArgumentParser) -> None:
    """The global ``docker compose`` options; accepted before or after the subcommand."""
    g = parser.add_argument_group("compose options")
    g.add_argument("-f", "--file", dest="files", action="append", default=None, metavar="FILE")
    g.add_argument("-p", "--project-name", dest="project_name", default=None)
    g.add_argument("--profile", dest="profiles", action="append", default=None)
    g.add_argument("--env-file", dest="env_files", action="append", default=None)
    g.add_argument("--project-directory", dest="project_directory", default=None)
    g.add_argument("--compatibility", action="store_true", default=None)
    g.add_argument(
        "--progress", choices=["auto", "tty", "plain", "json", "quiet"], default=None
    )
    g.add_argument("--ansi", choices=["never", "always", "auto"], default=None)
    g.add_argument("--dry-run", action="store_true", default=None,
                   help="show what would be done, do nothing")


def _global_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--log-format", choices=["console", "json"], default="console")
    p.add_argument("--version", action="store_true")
    p.add_argument("-h", "--help", action="store_true")
    return p


def _split_globals(argv: list[str]) -> tuple[list[str], list[str]]:
    """Leading options before the command name vs the rest."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--log-format" and i + 1 < len(argv):
            i += 2
        else:
            i += 1
    return argv[:i], argv[i:]


def configure_logging(verbose: int, fmt: str, stream: TextIO) -> None:
    """structlog is configured here, by the application, never by the library.

    Importing structlog costs ~100 ms (it pulls in rich when that is installed), so it is not
    imported here: the configuration is applied the moment something imports structlog. A
    command that logs nothing (``ps``) never pays for it, nor does one whose modules only log
    below the level (their :mod:`..logs` loggers know it).
    """
    from .. import logs

    level = logs.WARNING if verbose <= 0 else logs.INFO if verbose == 1 else logs.DEBUG
    logs.set_level(level)  # our loggers skip what structlog would drop, without importing it

    def apply() -> None:
        import structlog

        renderer: Any
        if fmt == "json":
            renderer = structlog.processors.JSONRenderer()
        else:
            renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=stream),
            cache_logger_on_first_use=False,
        )

    if "structlog" in sys.modules:
        apply()
    else:
        _ConfigureOnImport.install("structlog", apply)


class _ConfigureOnImport:
    """A one-shot meta path finder: run ``hook`` right after module ``name`` is first imported."""

    def __init__(self, name: str, hook: Callable[[], None]) -> None:
        self.name = name
        self.hook = hook

    @classmethod
    def install(cls, name: str, hook: Callable[[], None]) -> None:
        sys.meta_path[:] = [
            f for f in sys.meta_path if not (isinstance(f, cls) and f.name == name)
        ]
        sys.meta_path.insert(0, cls(name, hook))

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        hook = self.hook

        def exec_module(module: Any) -> None:
            original(module)
            hook()

        loader.exec_module = exec_module
        return spec


def _build_command_parser(
    prog: str, name: str, module_name: str, helptext: str, compose: bool,
    display: str | None = None,
) -> tuple[DockerParser, Callable[..., int]]:
    from .helpfmt import DockerParser

    module = importlib.import_module(module_name)
    fname = name.replace("-", "_")
    aliases: list[str] = []
    if not compose:
        for group, table in (("container", CONTAINER_GROUP), ("image", IMAGE_GROUP)):
            aliases += [f"{prog} {group} {n}" for n, (t, first) in table.items()
                        if t == name and not first]
        if aliases:
            aliases.append(f"{prog} {name}")
    # allow_abbrev=False: no prefix matching (``--attach`` must not become
    # ``--attach-foreground``); a subparser must be given it too (see test_cli_parsers.py)
    parser = DockerParser(prog=f"{prog} {display or name}", description=helptext,
                          allow_abbrev=False, aliases=aliases)
    if compose:
        add_compose_globals(parser)
    getattr(module, f"configure_{fname}")(parser)
    runner: Callable[..., int] = getattr(module, f"run_{fname}")
    return parser, runner


def main(argv: Sequence[str] | None = None, ctx: CliContext | None = None) -> int:
    """The command line ``argv`` (default: this process's). As the process's own command
    (``argv`` None) the cyclic garbage collector is tuned for a short start: off while the
    modules are imported (tens of thousands of objects, none of them garbage: ~10 ms of
    collections), then the survivors are frozen (no later collection walks them again) and it
    is on for the command; at the end everything is frozen once more, so that the interpreter's
    shutdown does not walk it all (~15 ms per command here)."""
    program = argv is None
    if program:
        gc.disable()
    try:
        return _main(argv, ctx, program)
    finally:
        if program:
            gc.freeze()
            gc.enable()


def _gc_ready(program: bool) -> None:
    if program:
        gc.freeze()
        gc.enable()


def _main(argv: Sequence[str] | None, ctx: CliContext | None, program: bool) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    prog = "opencontainer"
    ctx = ctx or CliContext()
    head, rest = _split_globals(args_list)
    g, unknown = _global_parser().parse_known_args(head)
    if g.version:
        ctx.out(f"opencontainer version {__version__}")
        return 0
    if unknown:
        # options that belong to a command; let the command parser see them
        rest = unknown + rest
        head = [h for h in head if h not in unknown]
    if not rest:
        # like `docker` with no arguments: usage on stdout, success
        ctx.out(_help_text(prog))
        return 0
    ctx.verbose = g.verbose
    ctx.log_format = g.log_format

    name, cmd_args = rest[0], rest[1:]
    display = name
    compose = False
    compose_pre: list[str] = []
    if name == "compose":
        compose = True
        # compose globals may come before the subcommand: `compose -f x.yml up`
        i = 0
        takes_value = {"-f", "--file", "-p", "--project-name", "--profile", "--env-file",
                       "--project-directory", "--progress", "--ansi"}
        while i < len(cmd_args) and cmd_args[i].startswith("-"):
            if cmd_args[i] in ("-h", "--help"):
                ctx.out(_compose_help(prog))
                return 0
            if cmd_args[i] in takes_value and i + 1 < len(cmd_args):
                # long forms: a subcommand may use -f/-p itself (logs -f, run -p)
                opt = {"-f": "--file", "-p": "--project-name"}.get(cmd_args[i], cmd_args[i])
                compose_pre += [opt, cmd_args[i + 1]]
                i += 2
            else:
                flag = cmd_args[i].split("=", 1)[0]
                if flag in takes_value and "=" not in cmd_args[i]:
                    ctx.err(f"Error: flag needs an argument: {flag}. See '{prog} compose "
                            "--help'.")
                    return USAGE_ERROR
                if flag not in takes_value and flag not in COMPOSE_FLAGS:
                    ctx.err(f"Error: unknown flag: {flag}. See '{prog} compose --help'.")
                    return USAGE_ERROR
                compose_pre.append(cmd_args[i])
                i += 1
        if i >= len(cmd_args):
            ctx.out(_compose_help(prog))
            return 0
        name, cmd_args = cmd_args[i], cmd_args[i + 1 :]
        display = name
        table = COMPOSE_COMMANDS
        prog = f"{prog} compose"
    elif name in TOP_LEVEL_COMPOSE:
        compose = True
        table = COMPOSE_COMMANDS
    else:
        if name in ("container", "image"):
            group = CONTAINER_GROUP if name == "container" else IMAGE_GROUP
            known = {**CONTAINER_COMMANDS, **IMAGE_COMMANDS, **MORE_CONTAINER_COMMANDS}
            group = {k: v for k, v in group.items() if v[0] in known}
            if not cmd_args or cmd_args[0] in ("-h", "--help") or cmd_args[0] not in group:
                if cmd_args and cmd_args[0] not in ("-h", "--help"):
                    ctx.err(f"Error: unknown command {name} {cmd_args[0]!r}. "
                            f"See '{prog} {name} --help'.")
                    return UNKNOWN_COMMAND
                ctx.out(_group_help(prog, name, group))
                return 0
            target, first = group[cmd_args[0]]
            display = f"{name} {cmd_args[0]}"
            name, cmd_args = target, [*first, *cmd_args[1:]]
        table = {**CONTAINER_COMMANDS, **IMAGE_COMMANDS, **MORE_CONTAINER_COMMANDS,
                 **GROUP_COMMANDS, **OTHER_COMMANDS}
    if name.startswith("-"):  # an option that no command takes: docker's usage error
        ctx.err(f"Error: unknown flag: {name}. See '{prog} --help'.")
        return USAGE_ERROR
    if name not in table:
        ctx.err(f"Error: unknown command {name!r}. See '{prog} --help'.")
        return UNKNOWN_COMMAND

    configure_logging(ctx.verbose, ctx.log_format, ctx.stderr)
    from ..errors import OpenContainerError

    try:
        module_name, helptext = table[name]
        parser, runner = _build_command_parser(prog, name, module_name, helptext, compose,
                                               display)
        parser.direct_help(ctx.stdout)
        _gc_ready(program)
        try:
            args = parser.parse_args(compose_pre + cmd_args)
        except SystemExit as exc:  # --help (0) or a usage error: docker's exit status 125
            code = int(exc.code or 0)
            return USAGE_ERROR if code == 2 else code
        if name == "run" and not compose and program:
            args.raw_argv = list(cmd_args)  # what a thin client hands to the engine service
        return int(runner(args, ctx) or 0)
    except OpenContainerError as exc:
        ctx.err(f"Error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        ctx.err("Interrupted.")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one sentence, details only with -v
        if ctx.verbose:
            import traceback

            traceback.print_exc(file=ctx.stderr)
        ctx.err(
            f"Error: internal error ({type(exc).__name__}: {exc}); "
            "rerun with -v for details and please report it."
        )
        return 1


def cwd() -> Path:
    return Path.cwd()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
