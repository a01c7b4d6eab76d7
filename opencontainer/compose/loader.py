"""Load compose files into a :class:`~opencontainer.compose.model.Project`.

Phases, as compose-go's: parse (ruamel round-trip, locations kept) -> interpolate -> validate
(JSON schema) -> include -> canonical form -> merge overrides -> extends -> resolve relative
paths -> defaults and the typed model -> semantic checks. Every problem is a ComposeError that
names the file, the line and the key path.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

import attrs
import structlog

from ..errors import ComposeError
from . import normalize as n
from .dotenv import DotenvError, read_dotenv
from .graph import check_cycles
from .interpolate import interpolate_tree
from .merge import (
    canonical_service,
    merge_mapping_section,
    merge_service,
    resolve_resource_paths,
    resolve_service_paths,
    strip_for_validation,
    strip_markers,
)
from .model import (
    Dependency,
    EnvFileProblem,
    FileReference,
    Healthcheck,
    PortConfig,
    Project,
    Resource,
    RestartPolicy,
    RunProblem,
    Service,
    ServiceNetwork,
    VolumeMount,
)
from .validate import validate_schema
from .yamlio import Locations, Path, compose_error, key_path_str, parse_yaml

log = structlog.get_logger(__name__)

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yml", "compose.override.yaml",
    "docker-compose.override.yml", "docker-compose.override.yaml",
)
SECTIONS = ("networks", "volumes", "secrets", "configs")

# Attributes that need root, namespaces or cgroups: accepted, warned about once, ignored.
UNSUPPORTED = (
    "cap_add", "cap_drop", "privileged", "devices", "device_cgroup_rules", "cgroup",
    "cgroup_parent", "cpu_count", "cpu_percent", "cpu_shares", "cpu_period", "cpu_quota",
    "cpu_rt_runtime", "cpu_rt_period", "cpus", "cpuset", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "oom_kill_disable", "oom_score_adj", "pids_limit",
    "blkio_config", "security_opt", "userns_mode", "uts", "isolation", "runtime",
    "storage_opt", "sysctls", "shm_size", "mac_address", "credential_spec", "gpus",
    "use_api_socket", "models", "provider",
)
_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _strings(values: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    return tuple(os.fspath(v) for v in values)


@attrs.frozen(kw_only=True)
class LoadOptions:
    """What to load. ``env`` defaults to ``os.environ``; ``working_dir`` to the current
    directory (relative ``files``/``env_files``/``project_directory`` resolve against it)."""

    files: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    project_name: str | None = None
    profiles: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    env_files: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    project_directory: str | None = None
    env: Mapping[str, str] | None = None
    interpolate: bool = True
    working_dir: str | None = None
    stdin_text: str | None = None  # content for ``-f -`` (default: read sys.stdin)
    # loading to run: what keeps a service from running (no image, a missing env_file) is
    # not warned about but left to ``Project.check_runnable`` (an error, for those services)
    for_run: bool = False


def normalize_project_name(name: str) -> str:
    out = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return out.lstrip("_-")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "y", "on")


# ---------------------------------------------------------------- environment and files


def _read_env_file(path: str, base_env: Mapping[str, str], what: str) -> dict[str, str]:
    try:
        return read_dotenv(FsPath(path), base_env.get)
    except FileNotFoundError:
        raise ComposeError(f"{what} {path} not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(f"cannot read {what} {path}: {exc}", file=path) from None
    except DotenvError as exc:
        m = re.match(r"line (\d+): (.*)", str(exc))
        if m:
            raise ComposeError(m.group(2), file=path, line=int(m.group(1))) from None
        raise ComposeError(str(exc), file=path) from None


def _discover(start: str) -> list[str]:
    d = os.path.abspath(start)
    while True:
        found = [c for c in DEFAULT_FILES if os.path.isfile(os.path.join(d, c))]
        if found:
            if len(found) > 1:
                log.warning(
                    f"Found multiple config files with supported names: {', '.join(found)}; "
                    f"using {found[0]}"
                )
            files = [os.path.join(d, found[0])]
            for o in OVERRIDE_FILES:
                if os.path.isfile(os.path.join(d, o)):
                    files.append(os.path.join(d, o))
                    break
            return files
        parent = os.path.dirname(d)
        if parent == d:
            raise ComposeError(
                "no configuration file provided: not found (looked for "
                f"{', '.join(DEFAULT_FILES)} in {os.path.abspath(start)} and its parents)"
            )
        d = parent


class _Loader:
    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.os_env: dict[str, str] = dict(os.environ if options.env is None else options.env)
        self.cwd = os.path.abspath(options.working_dir or os.getcwd())
        self.locs = Locations()
        self.warnings: list[str] = []
        self._warned: set[str] = set()

    def warn(self, message: str, **kw: Any) -> None:
        if message in self._warned:
            return
        self._warned.add(message)
        self.warnings.append(message)
        log.warning(message, **kw)

    # -- environment
    def _dotenv(self, directories: list[str]) -> dict[str, str]:
        """Values from --env-file files or the default .env files (first value wins)."""
        out: dict[str, str] = {}
        if self.options.env_files:
            for f in self.options.env_files:
                path = os.path.join(self.cwd, os.path.expanduser(f))
                out.update(_read_env_file(path, self.os_env, "env file"))
            return out
        if _truthy(self.os_env.get("COMPOSE_DISABLE_ENV_FILE")):
            return out
        seen: set[str] = set()
        for d in directories:
            path = os.path.join(d, ".env")
            if path in seen or not os.path.isfile(path):
                continue
            seen.add(path)
            for k, v in _read_env_file(path, self.os_env, "env file").items():
                out.setdefault(k, v)
        return out

    def load(self) -> Project:
        opts = self.options
        proj_dir_opt = (
            os.path.abspath(os.path.join(self.cwd, opts.project_directory))
            if opts.project_directory else None
        )
        first_env = self._dotenv([proj_dir_opt or self.cwd])
        env = {**first_env, **self.os_env}
        files = list(opts.files)
        if not files and env.get("COMPOSE_FILE"):
            sep = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
            files = [f for f in env["COMPOSE_FILE"].split(sep) if f]
        base_for_files = proj_dir_opt if (not opts.files and proj_dir_opt) else self.cwd
        if files:
            paths = [f if f == "-" else os.path.abspath(
                os.path.join(base_for_files, os.path.expanduser(f))) for f in files]
        else:
            paths = _discover(proj_dir_opt or self.cwd)
        first = paths[0]
        working_dir = proj_dir_opt or (self.cwd if first == "-" else os.path.dirname(first))
        if not opts.env_files and working_dir != (proj_dir_opt or self.cwd):
            second = self._dotenv([working_dir])
            dotenv = {**second, **first_env}
            env = {**dotenv, **self.os_env}
        if opts.project_name:
            env["COMPOSE_PROJECT_NAME"] = opts.project_name
        self.env = env

        # parse, interpolate, validate each file; then merge
        merged: dict[str, Any] = {}
        names: list[tuple[str, str]] = []
        for path in paths:
            doc = self._load_file(path, env, working_dir)
            if isinstance(doc.get("name"), str):
                names.append((doc["name"], path))
            merged = self._merge_docs(merged, doc)

        # project name
        name = self._project_name(names, working_dir, env)
        env = {**env}
        env.setdefault("COMPOSE_PROJECT_NAME", name)

        services: dict[str, Any] = merged.get("services") or {}
        services = self._apply_extends(services, working_dir, env)
        for _sname, svc in services.items():
            resolve_service_paths(svc, working_dir, env)
        sections: dict[str, dict[str, Any]] = {}
        for sec in SECTIONS:
            section = {k: (dict(v) if isinstance(v, Mapping) else {})
                       for k, v in (merged.get(sec) or {}).items()}
            if sec in ("secrets", "configs"):
                resolve_resource_paths(section, working_dir, env)
            sections[sec] = section
        extensions = {k: v for k, v in merged.items() if k.startswith("x-")}
        if merged.get("models"):
            self.warn("top-level 'models' (AI model runner) is not supported and is ignored")
        return self._build(name, working_dir, paths, env, services, sections, extensions)

    # -- per file
    def _read(self, path: str) -> str:
        if path == "-":
            if self.options.stdin_text is not None:
                return self.options.stdin_text
            return sys.stdin.read()
        try:
            return FsPath(path).read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            raise ComposeError(f"compose file {path} not found", file=path) from None
        except IsADirectoryError:
            raise ComposeError(f"{path} is a directory, not a compose file", file=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ComposeError(f"cannot read compose file {path}: {exc}", file=path) from None

    def _parse(
        self, path: str, env: Mapping[str, str], *, record: bool = True
    ) -> tuple[dict[str, Any], Locations]:
        text = self._read(path)
        data, locs = parse_yaml(text, path)
        if data is None:
            raise ComposeError("empty compose file", file=path, line=1)
        if not isinstance(data, dict):
            raise ComposeError("the top level of a compose file must be a mapping",
                               file=path, line=1)
        if isinstance(data.get("services"), dict):
            data["services"] = {k: ({} if v is None else v) for k, v in data["services"].items()}
        if self.options.interpolate:
            data = interpolate_tree(data, env, locs, warned=self._warned)
        validate_schema(strip_for_validation(data), locs, path)
        if record:
            self.locs.update(locs)
        return data, locs

    def _load_file(
        self, path: str, env: Mapping[str, str], working_dir: str, depth: int = 0
    ) -> dict[str, Any]:
        data, locs = self._parse(path, env)
        if "version" in data:
            self.warn(f"{path}: the attribute `version` is obsolete, it will be ignored")
        services = data.get("services") or {}
        canon: dict[str, Any] = {}
        for sname, svc in services.items():
            canon[sname] = canonical_service(svc, locs, ("services", sname))
        doc: dict[str, Any] = {k: v for k, v in data.items() if k not in ("services", "include")}
        doc["services"] = canon
        for inc_i, inc in enumerate(data.get("include") or []):
            included = self._include(inc, path, working_dir, env, ("include", inc_i), depth)
            doc = self._merge_include(doc, included, locs, ("include", inc_i))
        return doc

    def _include(
        self, inc: Any, parent: str, working_dir: str, env: Mapping[str, str],
        p: Path, depth: int,
    ) -> dict[str, Any]:
        if depth > 20:
            raise compose_error("include nesting is too deep (cycle?)", self.locs, p)
        parent_dir = os.path.dirname(parent) if parent != "-" else working_dir
        if isinstance(inc, str):
            inc = {"path": inc}
        raw_paths = inc.get("path")
        rel = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths or [])
        if not rel:
            raise compose_error("include needs a path", self.locs, p)
        files = [os.path.normpath(os.path.join(parent_dir, os.path.expanduser(f))) for f in rel]
        for f in files:
            if not os.path.isfile(f):
                raise compose_error(f"included file {f} not found", self.locs, p)
        proj_dir = os.path.normpath(os.path.join(parent_dir, inc["project_directory"])) \
            if inc.get("project_directory") else os.path.dirname(files[0])
        env_files = inc.get("env_file")
        env_list = [env_files] if isinstance(env_files, str) else list(env_files or [])
        inc_env: dict[str, str] = {}
        if env_list:
            for ef in env_list:
                inc_env.update(_read_env_file(os.path.join(parent_dir, ef), env, "env file"))
        elif os.path.isfile(os.path.join(proj_dir, ".env")):
            inc_env.update(_read_env_file(os.path.join(proj_dir, ".env"), env, "env file"))
        sub_env = {**inc_env, **env}
        doc: dict[str, Any] = {}
        for f in files:
            d = self._load_file(f, sub_env, proj_dir, depth + 1)
            doc = self._merge_docs(doc, d)
        services = self._apply_extends(doc.get("services") or {}, proj_dir, sub_env)
        for svc in services.values():
            resolve_service_paths(svc, proj_dir, sub_env)
        doc["services"] = services
        for sec in ("secrets", "configs"):
            if isinstance(doc.get(sec), dict):
                section = {k: dict(v) if isinstance(v, Mapping) else {}
                           for k, v in doc[sec].items()}
                resolve_resource_paths(section, proj_dir, sub_env)
                doc[sec] = section
        return doc

    def _merge_include(
        self, doc: dict[str, Any], included: dict[str, Any], locs: Locations, p: Path
    ) -> dict[str, Any]:
        out = dict(doc)
        services = dict(included.get("services") or {})
        for sname, svc in (doc.get("services") or {}).items():
            if sname in services:
                raise compose_error(
                    f"service {sname!r} is defined both here and in an included project",
                    self.locs, ("services", sname),
                )
            services[sname] = svc
        out["services"] = services
        for sec in SECTIONS:
            inc_sec = included.get(sec) or {}
            own = doc.get(sec) or {}
            if inc_sec or own:
                merged = dict(inc_sec)
                for k, v in own.items():
                    if k in merged and merged[k] != v:
                        raise compose_error(
                            f"{sec[:-1]} {k!r} conflicts with the one of an included project",
                            self.locs, (sec, k),
                        )
                    merged[k] = v
                out[sec] = merged
        return out

    def _merge_docs(self, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        if not base:
            # services keep their markers until extends has been applied
            return {k: strip_markers(v) if k != "services" else dict(v)
                    for k, v in over.items()}
        out = dict(base)
        for key, value in over.items():
            if key == "services":
                services = dict(out.get("services") or {})
                for sname, svc in value.items():
                    if sname in services:
                        services[sname] = merge_service(services[sname], svc)
                    else:
                        services[sname] = svc
                out["services"] = services
            elif key in SECTIONS:
                out[key] = merge_mapping_section(out.get(key) or {}, value or {})
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge_mapping_section(out[key], value)
            else:
                out[key] = strip_markers(value)
        return out

    # -- project name
    def _project_name(
        self, names: list[tuple[str, str]], working_dir: str, env: Mapping[str, str]
    ) -> str:
        explicit = self.options.project_name or env.get("COMPOSE_PROJECT_NAME")
        if explicit:
            if not _NAME_OK.match(explicit):
                raise ComposeError(
                    f'invalid project name "{explicit}": must consist only of lowercase '
                    "alphanumeric characters, hyphens, and underscores as well as start with "
                    "a letter or number"
                )
            return explicit
        if names and names[-1][0]:
            value, path = names[-1]
            norm = normalize_project_name(value)
            if not norm:
                file, line = self.locs.find(("name",))
                raise ComposeError(f"invalid project name {value!r}", file=file or path,
                                   line=line, key="name")
            return norm
        norm = normalize_project_name(os.path.basename(working_dir.rstrip("/")))
        if not norm:
            norm = normalize_project_name(os.path.basename(self.cwd.rstrip("/"))) or "default"
        return norm

    # -- extends
    def _apply_extends(
        self, services: dict[str, Any], working_dir: str, env: Mapping[str, str]
    ) -> dict[str, Any]:
        resolved: dict[str, dict[str, Any]] = {}
        for sname in services:
            resolved[sname] = self._resolve_extends(
                sname, services, None, working_dir, env, [], resolved
            )
        return {k: strip_markers(v) for k, v in resolved.items()}

    def _resolve_extends(
        self, sname: str, services: Mapping[str, Any], file: str | None, base_dir: str,
        env: Mapping[str, str], chain: list[tuple[str | None, str]],
        cache: dict[str, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        if cache is not None and sname in cache:
            return cache[sname]
        svc: dict[str, Any] = copy.deepcopy(services[sname])
        ext = svc.pop("extends", None)
        if ext is None:
            return svc
        p: Path = ("services", sname, "extends")
        if isinstance(ext, str):
            ext = {"service": ext}
        target = n.scalar_str(ext.get("service"))
        ext_file = ext.get("file")
        key = ((ext_file and os.path.abspath(os.path.join(base_dir, ext_file))) or file, target)
        me = (file, sname)
        if me in chain or key in chain or key == me:
            cyc = " -> ".join(s for _, s in [*chain, me, key])
            raise compose_error(f"circular reference with extends: {cyc}", self.locs, p)
        if len(chain) > 50:
            raise compose_error("extends chain is too long", self.locs, p)
        if ext_file:
            path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(ext_file)))
            data, locs = self._parse(path, env, record=False)
            other = data.get("services") or {}
            if target not in other:
                raise compose_error(
                    f"cannot extend service {sname!r}: service {target!r} not found in {path}",
                    self.locs, p,
                )
            canon = {k: canonical_service({} if v is None else v, locs, ("services", k))
                     for k, v in other.items()}
            base = self._resolve_extends(
                target, canon, path, os.path.dirname(path), env, [*chain, me], None
            )
            base = strip_markers(base)
            resolve_service_paths(base, os.path.dirname(path), env)
            self.locs.import_subtree(locs, ("services", target), ("services", sname))
        else:
            if target not in services:
                raise compose_error(
                    f"cannot extend service {sname!r}: service {target!r} not found",
                    self.locs, p,
                )
            base = self._resolve_extends(
                target, services, file, base_dir, env, [*chain, me], cache if file is None else None
            )
            self.locs.copy_subtree(("services", target), ("services", sname))
        merged: dict[str, Any] = strip_markers(merge_service(copy.deepcopy(base), svc))
        if cache is not None:
            cache[sname] = merged
        return merged

    # -- the typed model
    def _build(
        self, name: str, working_dir: str, files: list[str], env: dict[str, str],
        services: dict[str, Any], sections: dict[str, dict[str, Any]],
        extensions: dict[str, Any],
    ) -> Project:
        active = set(self.options.profiles)
        if not active and env.get("COMPOSE_PROFILES"):
            active = {p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()}
        enabled: dict[str, Service] = {}
        disabled: dict[str, Service] = {}
        for sname, svc in services.items():
            profiles = svc.get("profiles") or []
            on = not profiles or "*" in active or bool(active & set(profiles))
            service = self._service(sname, svc, name, working_dir, env, lenient=not on)
            (enabled if on else disabled)[sname] = service

        # defaults: the default network
        networks = sections["networks"]
        uses_default = False
        final: dict[str, Service] = {}
        for sname, svc in enabled.items():
            if not svc.networks and not svc.network_mode:
                svc = attrs.evolve(svc, networks={"default": ServiceNetwork()})
            if "default" in svc.networks:
                uses_default = True
            final[sname] = svc
        enabled = final
        if uses_default and "default" not in networks:
            networks["default"] = {"name": f"{name}_default"}
        for nname, spec in networks.items():
            self._name_default(spec, nname, name, ("networks", nname))
        for vname, spec in sections["volumes"].items():
            self._name_default(spec, vname, name, ("volumes", vname))
        for sec in ("secrets", "configs"):
            for rname, spec in sections[sec].items():
                spec.setdefault("name", f"{name}_{rname}")

        self._check(enabled, disabled, sections)
        order = [s for s in services if s in enabled]
        return Project(
            name=name,
            working_dir=working_dir,
            services={s: enabled[s] for s in order},
            disabled_services=disabled,
            networks={k: Resource(name=k, config=v) for k, v in networks.items()},
            volumes={k: Resource(name=k, config=v) for k, v in sections["volumes"].items()},
            secrets={k: Resource(name=k, config=v) for k, v in sections["secrets"].items()},
            configs={k: Resource(name=k, config=v) for k, v in sections["configs"].items()},
            extensions=extensions,
            environment=env,
            files=tuple(files),
            profiles=tuple(sorted(active)),
            warnings=tuple(self.warnings),
        )

    def _name_default(self, spec: dict[str, Any], key: str, project: str, p: Path) -> None:
        ext = spec.get("external")
        if isinstance(ext, dict) or (ext is not None and self._bool(ext, (*p, "external"))):
            ext_name = ext.get("name") if isinstance(ext, dict) else None
            spec.setdefault("name", ext_name or key)
            spec["external"] = True
        else:
            spec.pop("external", None)
            spec.setdefault("name", f"{project}_{key}")

    def _bool(self, value: Any, p: Path) -> bool:
        try:
            return n.parse_bool(value)
        except n.SyntaxProblem as exc:
            raise compose_error(str(exc), self.locs, p) from None

    def _int(self, value: Any, p: Path) -> int:
        try:
            return n.parse_int(value)
        except n.SyntaxProblem as exc:
            raise compose_error(str(exc), self.locs, p) from None

    def _dur(self, value: Any, p: Path) -> float:
        try:
            return n.parse_duration(value)
        except n.SyntaxProblem as exc:
            raise compose_error(str(exc), self.locs, p) from None

    def _environment(
        self, sname: str, svc: Mapping[str, Any], env: Mapping[str, str], lenient: bool,
        problems: list[EnvFileProblem],
    ) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for i, item in enumerate(svc.get("env_file") or []):
            path = item.get("path")
            if not path:
                continue
            required = item.get("required", True)
            if not os.path.isfile(path):
                if required:
                    file, line = self.locs.find(("services", sname, "env_file", i))
                    problems.append(EnvFileProblem(
                        path=path, file=file, line=line,
                        key=f"services.{sname}.env_file[{i}]",
                    ))
                    if not lenient and not self.options.for_run:
                        self.warn(f"service {sname!r}: env file {path} not found")
                continue
            try:
                values = read_dotenv(FsPath(path), env.get, fmt=item.get("format"))
            except (OSError, UnicodeDecodeError) as exc:
                raise compose_error(f"cannot read env file {path}: {exc}", self.locs,
                                    ("services", sname, "env_file", i)) from None
            except DotenvError as exc:
                raise ComposeError(str(exc), file=path) from None
            out.update(values)
        for k, v in (svc.get("environment") or {}).items():
            if v is None:
                looked = env.get(k)
                if looked is None:
                    out.pop(k, None)
                    continue
                out[k] = looked
            else:
                out[k] = v
        return out

    def _service(
        self, sname: str, svc: dict[str, Any], project: str, working_dir: str,
        env: Mapping[str, str], *, lenient: bool,
    ) -> Service:
        base: Path = ("services", sname)
        known = {
            "image", "build", "command", "entrypoint", "environment", "env_file", "working_dir",
            "user", "ports", "volumes", "tmpfs", "depends_on", "healthcheck", "restart",
            "stop_signal", "stop_grace_period", "hostname", "domainname", "extra_hosts",
            "labels", "profiles", "container_name", "scale", "networks", "network_mode",
            "links", "expose", "pull_policy", "platform", "tty", "stdin_open", "init",
            "read_only", "secrets", "configs", "dns", "dns_search", "dns_opt", "extends",
            "label_file",
        }
        if (svc.get("image") is None and svc.get("build") is None and not lenient
                and not self.options.for_run):
            self.warn(f"service {sname!r} has neither an image nor a build context specified")
        run_problems = self._run_problems(sname, svc)
        for attr in UNSUPPORTED:
            if attr in svc and svc[attr] not in (None, [], {}):
                self.warn(
                    f"service {sname!r}: '{attr}' needs root or kernel namespaces and is "
                    "ignored by OpenContainer", service=sname, attribute=attr,
                )
        mode = n.scalar_str(svc.get("network_mode") or "")
        if mode and mode not in ("host", "bridge", "default"):
            self.warn(f"service {sname!r}: network_mode {mode!r} cannot be emulated without a "
                      "network namespace; the service shares the host network")
        for ns in ("pid", "ipc"):
            value = svc.get(ns)
            if value not in (None, "", "host"):
                self.warn(f"service {sname!r}: {ns} {value!r} is not supported; the host's is "
                          "used")
        extra = {k: v for k, v in svc.items() if k not in known}
        problems: list[EnvFileProblem] = []

        ports: list[PortConfig] = []
        for _i, pd in enumerate(svc.get("ports") or []):
            ports.append(PortConfig(
                target=pd["target"], published=pd.get("published"), host_ip=pd.get("host_ip"),
                protocol=pd.get("protocol", "tcp"), mode=pd.get("mode", "ingress"),
                name=pd.get("name"), app_protocol=pd.get("app_protocol"),
            ))
        volumes: list[VolumeMount] = []
        for _i, vd in enumerate(svc.get("volumes") or []):
            volumes.append(VolumeMount(
                type=vd["type"], target=vd["target"], source=vd.get("source"),
                read_only=bool(vd.get("read_only", False)), consistency=vd.get("consistency"),
                bind=vd.get("bind"), volume=vd.get("volume"), tmpfs=vd.get("tmpfs"),
                image=vd.get("image"),
            ))
        deps: dict[str, Dependency] = {}
        for dname, dd in (svc.get("depends_on") or {}).items():
            deps[dname] = Dependency(
                condition=dd.get("condition", "service_started"),
                required=bool(dd.get("required", True)), restart=bool(dd.get("restart", False)),
            )
        healthcheck = None
        hc = svc.get("healthcheck")
        if isinstance(hc, dict):
            hp = (*base, "healthcheck")
            test = hc.get("test")
            disable = self._bool(hc.get("disable", False), (*hp, "disable"))
            if test is not None and list(test)[:1] == ["NONE"]:
                disable = True
            durations: dict[str, float | None] = {}
            for k in ("interval", "timeout", "start_period", "start_interval"):
                durations[k] = self._dur(hc[k], (*hp, k)) if hc.get(k) is not None else None
            retries = hc.get("retries")
            healthcheck = Healthcheck(
                test=tuple(test) if test is not None else None,
                retries=self._int(retries, (*hp, "retries")) if retries is not None else None,
                **durations,
                disable=disable,
            )
        restart = RestartPolicy()
        if svc.get("restart") is not None:
            try:
                rname, rmax = n.parse_restart(svc["restart"])
            except n.SyntaxProblem as exc:
                raise compose_error(str(exc), self.locs, (*base, "restart")) from None
            restart = RestartPolicy(name=rname, max_retries=rmax)
        deploy = svc.get("deploy") if isinstance(svc.get("deploy"), dict) else None
        scale = 1
        if deploy and isinstance(deploy.get("restart_policy"), dict):
            rp = deploy["restart_policy"]
            rpp = (*base, "deploy", "restart_policy")
            cond = n.scalar_str(rp.get("condition") or "any")
            mapped = {"none": "no", "no": "no", "on-failure": "on-failure", "any": "always",
                      "always": "always", "unless-stopped": "unless-stopped"}.get(cond)
            if mapped is None:
                raise compose_error(f"invalid restart condition {cond!r}", self.locs,
                                    (*rpp, "condition"))
            restart = RestartPolicy(
                name=mapped,
                max_retries=self._int(rp["max_attempts"], (*rpp, "max_attempts"))
                if rp.get("max_attempts") is not None else 0,
                delay=self._dur(rp["delay"], (*rpp, "delay")) if rp.get("delay") else None,
                window=self._dur(rp["window"], (*rpp, "window")) if rp.get("window") else None,
            )
        if deploy and deploy.get("replicas") is not None:
            scale = self._int(deploy["replicas"], (*base, "deploy", "replicas"))
        if svc.get("scale") is not None:
            s2 = self._int(svc["scale"], (*base, "scale"))
            if deploy and deploy.get("replicas") is not None and s2 != scale:
                raise compose_error(
                    f"can't set distinct values on 'scale' and 'deploy.replicas': {s2} and "
                    f"{scale}", self.locs, (*base, "scale"))
            scale = s2
        if scale < 0:
            raise compose_error("scale must not be negative", self.locs, (*base, "scale"))

        networks: dict[str, ServiceNetwork] = {}
        for nname, nd in (svc.get("networks") or {}).items():
            nd = nd or {}
            networks[nname] = ServiceNetwork(
                aliases=tuple(n.scalar_str(a) for a in nd.get("aliases") or ()),
                extra={k: v for k, v in nd.items() if k != "aliases"},
            )
        secrets = tuple(self._ref(r) for r in svc.get("secrets") or ())
        configs = tuple(self._ref(r) for r in svc.get("configs") or ())
        labels: dict[str, str] = {}
        for i, lf in enumerate(svc.get("label_file") or ()):
            try:
                labels.update(read_dotenv(FsPath(lf), None))
            except (OSError, UnicodeDecodeError, DotenvError) as exc:
                raise compose_error(f"cannot read label file {lf}: {exc}", self.locs,
                                    (*base, "label_file", i)) from None
        labels.update({k: ("" if v is None else v) for k, v in (svc.get("labels") or {}).items()})
        sgp = svc.get("stop_grace_period")
        return Service(
            name=sname,
            image=n.scalar_str(svc["image"]) if svc.get("image") is not None else None,
            build=svc.get("build"),
            command=svc.get("command"),
            entrypoint=svc.get("entrypoint"),
            environment=self._environment(sname, svc, env, lenient, problems),
            env_file_problems=problems,
            run_problems=run_problems,
            working_dir=svc.get("working_dir"),
            user=n.scalar_str(svc["user"]) if svc.get("user") is not None else None,
            ports=ports,
            volumes=volumes,
            tmpfs=svc.get("tmpfs") or (),
            depends_on=deps,
            healthcheck=healthcheck,
            restart=restart,
            stop_signal=n.scalar_str(svc.get("stop_signal") or "SIGTERM"),
            stop_grace_period=self._dur(sgp, (*base, "stop_grace_period")) if sgp else 10.0,
            hostname=svc.get("hostname") or None,
            domainname=svc.get("domainname") or None,
            extra_hosts=svc.get("extra_hosts") or (),
            labels=labels,
            profiles=svc.get("profiles") or (),
            container_name=svc.get("container_name") or None,
            scale=scale,
            networks=networks,
            network_mode=svc.get("network_mode") or None,
            links=svc.get("links") or (),
            expose=tuple(n.scalar_str(e) for e in svc.get("expose") or ()),
            pull_policy=svc.get("pull_policy") or None,
            platform=svc.get("platform") or None,
            tty=self._bool(svc.get("tty", False), (*base, "tty")),
            stdin_open=self._bool(svc.get("stdin_open", False), (*base, "stdin_open")),
            init=self._bool(svc["init"], (*base, "init")) if svc.get("init") is not None else None,
            read_only=self._bool(svc.get("read_only", False), (*base, "read_only")),
            secrets=secrets,
            configs=configs,
            dns=svc.get("dns") or (),
            dns_search=svc.get("dns_search") or (),
            dns_opt=svc.get("dns_opt") or (),
            extra=extra,
        )

    def _run_problems(self, sname: str, svc: Mapping[str, Any]) -> list[RunProblem]:
        """What keeps a service from running (kept for ``check_runnable``; ``config`` only
        warns): no image and nothing to build it from."""
        if svc.get("image") is not None and n.scalar_str(svc["image"]).strip():
            return []
        if svc.get("build") is not None:
            return []  # built by up / compose build (opencontainer.cli.compose_build)
        path: Path = ("services", sname, "image") if "image" in svc else ("services", sname)
        message = f"service {sname!r} has no image; give the service an image"
        file, line = self.locs.find(path)
        return [RunProblem(message=message, file=file, line=line, key=key_path_str(path))]

    @staticmethod
    def _ref(r: Mapping[str, Any]) -> FileReference:
        return FileReference(
            source=r["source"], target=r["target"], uid=r.get("uid"), gid=r.get("gid"),
            mode=r.get("mode"),
        )

    # -- semantic checks
    def _check(
        self, enabled: Mapping[str, Service], disabled: Mapping[str, Service],
        sections: Mapping[str, Mapping[str, Any]],
    ) -> None:
        names: dict[str, str] = {}
        for sname, svc in enabled.items():
            base: Path = ("services", sname)
            for dep, d in svc.depends_on.items():
                if dep in enabled:
                    continue
                where = (*base, "depends_on", dep)
                if not d.required:
                    self.warn(f"service {sname!r}: optional dependency {dep!r} is not enabled")
                    continue
                if dep in disabled:
                    raise compose_error(
                        f"service {sname!r} depends on service {dep!r} which is disabled by "
                        "its profiles", self.locs, where)
                raise compose_error(
                    f"service {sname!r} depends on undefined service {dep!r}", self.locs, where)
            if svc.container_name:
                if svc.container_name in names:
                    raise compose_error(
                        f"services {names[svc.container_name]!r} and {sname!r} have the same "
                        f"container name {svc.container_name!r}", self.locs,
                        (*base, "container_name"))
                names[svc.container_name] = sname
                if svc.scale > 1:
                    raise compose_error(
                        f"service {sname!r} sets container_name, so it cannot be scaled to "
                        f"{svc.scale}", self.locs, (*base, "container_name"))
            for i, v in enumerate(svc.volumes):
                if v.type == "volume" and v.source and v.source not in sections["volumes"]:
                    raise compose_error(
                        f"service {sname!r} refers to undefined volume {v.source!r}",
                        self.locs, (*base, "volumes", i))
            for kind in ("secrets", "configs"):
                for i, r in enumerate(getattr(svc, kind)):
                    if r.source not in sections[kind]:
                        raise compose_error(
                            f"service {sname!r} refers to undefined {kind[:-1]} {r.source!r}",
                            self.locs, (*base, kind, i))
            for net in svc.networks:
                if net != "default" and net not in sections["networks"]:
                    raise compose_error(
                        f"service {sname!r} refers to undefined network {net!r}",
                        self.locs, (*base, "networks", net))
            mode = svc.network_mode or ""
            for prefix in ("service:",):
                if mode.startswith(prefix) and mode[len(prefix):] not in enabled:
                    raise compose_error(
                        f"service {sname!r} uses network_mode of undefined service "
                        f"{mode[len(prefix):]!r}", self.locs, (*base, "network_mode"))
        check_cycles(enabled, self.locs)


def load_project(options: LoadOptions) -> Project:
    """Load, merge, validate and normalise the compose files described by ``options``."""
    try:
        return _Loader(options).load()
    except ComposeError:
        raise
    except RecursionError:
        raise ComposeError("compose file nesting is too deep") from None


__all__ = ["LoadOptions", "load_project", "normalize_project_name"]
