"""Canonical form of a service dict, and the merge rules for several files and ``extends``.

``canonical_service`` turns every list-or-mapping attribute into one form (mappings for
environment/labels/depends_on/networks, long dicts for ports/volumes/secrets/configs, ...), so
that merging is simple: mappings merge key by key, keyed sequences de-duplicate by their key,
other sequences append and de-duplicate, scalars are replaced, and ``command``, ``entrypoint``
and ``healthcheck.test`` are replaced (compose-go ``override/merge.go``). ``!reset`` and
``!override`` markers are honoured at any depth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import normalize as n
from .yamlio import Locations, Override, Path, Reset, compose_error

KV_KEYS = ("environment", "labels", "annotations", "sysctls")
LIST_KEYS = (
    "tmpfs", "dns", "dns_search", "dns_opt", "profiles", "cap_add", "cap_drop", "links",
    "expose", "external_links", "security_opt", "group_add", "volumes_from", "label_file",
    "device_cgroup_rules",
)
REPLACE_KEYS = ("command", "entrypoint")


def _marker_map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, Reset):
        return value
    if isinstance(value, Override):
        return Override(fn(value.value))
    return fn(value)


def canonical_service(svc: Any, locs: Locations, path: Path) -> dict[str, Any]:
    """Canonical form of one service (raises ComposeError naming file:line and key)."""
    if svc is None:
        return {}
    if not isinstance(svc, Mapping):
        raise compose_error("a service must be a mapping", locs, path)
    out: dict[str, Any] = {}
    for key, value in svc.items():
        p = (*path, key)
        def canon(v: Any, k: str = key, p: Path = p) -> Any:
            return _canon_attr(k, v, locs, p)

        try:
            out[key] = _marker_map(value, canon)
        except n.SyntaxProblem as exc:
            raise compose_error(str(exc), locs, p) from None
    return out


def _canon_attr(key: str, value: Any, locs: Locations, p: Path) -> Any:
    if value is None:
        return None
    if key == "build":
        if isinstance(value, str):
            return {"context": value}
        out = dict(value)
        if "args" in out and not isinstance(out["args"], (Reset, Override)):
            out["args"] = n.kv_map(out["args"])
        return out
    if key in REPLACE_KEYS:
        return list(n.split_command(value) or ())
    if key in KV_KEYS:
        return n.kv_map(value)
    if key in LIST_KEYS:
        return n.string_list(value)
    if key == "extra_hosts":
        return n.extra_hosts(value)
    if key == "env_file":
        items = value if isinstance(value, list) else [value]
        files: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                d: dict[str, Any] = {"path": n.scalar_str(item.get("path", ""))}
                try:
                    d["required"] = n.parse_bool(item.get("required", True))
                except n.SyntaxProblem as exc:
                    raise compose_error(str(exc), locs, (*p, i, "required")) from None
                if item.get("format"):
                    d["format"] = n.scalar_str(item["format"])
                files.append(d)
            else:
                files.append({"path": n.scalar_str(item), "required": True})
        return files
    if key == "depends_on":
        deps: dict[str, Any] = {}
        if isinstance(value, list):
            for name in value:
                deps[n.scalar_str(name)] = {"condition": "service_started", "required": True}
        else:
            for name, spec in value.items():
                dep: dict[str, Any] = dict(spec or {})
                d = dep
                d.setdefault("condition", "service_started")
                try:
                    d["required"] = n.parse_bool(d.get("required", True))
                    if "restart" in d:
                        d["restart"] = n.parse_bool(d["restart"])
                except n.SyntaxProblem as exc:
                    raise compose_error(str(exc), locs, (*p, name)) from None
                deps[str(name)] = d
        return deps
    if key == "networks":
        if isinstance(value, list):
            return {n.scalar_str(v): None for v in value}
        return {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in value.items()}
    if key == "ports":
        ports: list[Any] = []
        for i, spec in enumerate(value):
            try:
                ports.extend(n.parse_port(spec))
            except n.SyntaxProblem as exc:
                raise compose_error(str(exc), locs, (*p, i)) from None
        return ports
    if key == "volumes":
        vols: list[Any] = []
        for i, spec in enumerate(value):
            try:
                vols.append(n.parse_volume(spec))
            except n.SyntaxProblem as exc:
                raise compose_error(str(exc), locs, (*p, i)) from None
        return vols
    if key in ("secrets", "configs"):
        refs: list[Any] = []
        for i, spec in enumerate(value):
            refs.append(_file_ref(key, spec, locs, (*p, i)))
        return refs
    if key == "healthcheck":
        hc = dict(value)
        test = hc.get("test")
        if isinstance(test, str):
            hc["test"] = ["CMD-SHELL", test]
        return hc
    return value


def _file_ref(kind: str, spec: Any, locs: Locations, p: Path) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        d = {k: v for k, v in spec.items() if v is not None}
        if not d.get("source"):
            raise compose_error(f"a {kind[:-1]} reference needs a source", locs, p)
        d["source"] = n.scalar_str(d["source"])
    else:
        d = {"source": n.scalar_str(spec)}
    target = n.scalar_str(d.get("target") or "")
    if kind == "secrets":
        if not target:
            target = f"/run/secrets/{d['source']}"
        elif not target.startswith("/"):
            target = f"/run/secrets/{target}"
    elif not target:
        target = f"/{d['source']}"
    d["target"] = target
    if "mode" in d:
        try:
            d["mode"] = n.mode_int(d["mode"])
        except n.SyntaxProblem as exc:
            raise compose_error(str(exc), locs, (*p, "mode")) from None
    for k in ("uid", "gid"):
        if k in d:
            d[k] = n.scalar_str(d[k])
    return d


# ---------------------------------------------------------------- merging


def _dedupe(items: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    """Keep one item per key: the last one wins, at the position of the first."""
    index: dict[Any, int] = {}
    out: list[Any] = []
    for item in items:
        k = key(item)
        if k in index:
            out[index[k]] = item
        else:
            index[k] = len(out)
            out.append(item)
    return out


def _json_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=repr)


def _target_key(item: Any) -> Any:
    return item.get("target") if isinstance(item, Mapping) else _json_key(item)


def _env_file_key(item: Any) -> Any:
    return item.get("path") if isinstance(item, Mapping) else _json_key(item)


_KEYED: dict[str, Callable[[Any], Any]] = {
    "ports": lambda d: n.port_key(d) if isinstance(d, Mapping) else _json_key(d),
    "volumes": _target_key,
    "secrets": _target_key,
    "configs": _target_key,
    "devices": _target_key,
    "env_file": _env_file_key,
}


def merge_values(base: Any, over: Any, key: str | None = None, depth: int = 0) -> Any:
    """Merge ``over`` onto ``base`` (markers in ``over`` are honoured)."""
    if isinstance(over, Reset):
        return over
    if isinstance(over, Override):
        return over.value
    if isinstance(base, (Reset, Override)):
        base = base.value if isinstance(base, Override) else None
    if base is None:
        return over
    if depth == 0 and key in REPLACE_KEYS:
        return over
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        if depth == 0 and key == "logging":
            bd, od = base.get("driver"), over.get("driver")
            if bd and od and bd != od:
                return dict(over)
        out = dict(base)
        for k, v in over.items():
            if isinstance(v, Reset):
                out.pop(k, None)
                continue
            if depth == 0 and key == "healthcheck" and k == "test":
                out[k] = v.value if isinstance(v, Override) else v
                continue
            out[k] = merge_values(out[k], v, key, depth + 1) if k in out else _strip(v)
        return out
    if isinstance(base, list) and isinstance(over, list):
        keyfn = _KEYED.get(key or "") if depth <= 1 else None
        return _dedupe(list(base) + [_strip(v) for v in over], keyfn or _json_key)
    return _strip(over)


def merge_service(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Reset):
            out.pop(k, None)
        elif isinstance(v, Override):
            out[k] = _strip(v.value)
        elif k in out:
            out[k] = merge_values(out[k], v, k, 0)
        else:
            out[k] = _strip(v)
    return out


def merge_mapping_section(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level networks/volumes/secrets/configs: entries merged recursively."""
    return _deep(base, over)


def _deep(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Reset):
            out.pop(k, None)
        elif isinstance(v, Override):
            out[k] = _strip(v.value)
        elif isinstance(out.get(k), Mapping) and isinstance(v, Mapping):
            out[k] = _deep(out[k], v)
        else:
            out[k] = _strip(v)
    return out


def _strip(value: Any) -> Any:
    """Remove markers: ``!reset`` entries vanish, ``!override`` values are unwrapped."""
    if isinstance(value, Override):
        return _strip(value.value)
    if isinstance(value, Reset):
        return None
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_strip(v) for v in value if not isinstance(v, Reset)]
    return value


def strip_markers(value: Any) -> Any:
    return _strip(value)


def strip_for_validation(value: Any) -> Any:
    """A copy for schema validation: ``!reset`` keys dropped, ``!override`` unwrapped."""
    return _strip(value)


# ---------------------------------------------------------------- relative paths


def _is_remote(context: str) -> bool:
    return "://" in context or context.startswith(("git@", "github.com/"))


def resolve_service_paths(svc: dict[str, Any], base_dir: str, env: Mapping[str, str]) -> None:
    """Make the service's host paths absolute against ``base_dir`` (in place, idempotent)."""
    build = svc.get("build")
    if isinstance(build, dict):
        ctx = build.get("context")
        if ctx is None:
            build["context"] = base_dir
        elif isinstance(ctx, str) and not _is_remote(ctx):
            build["context"] = n.resolve_host_path(ctx, base_dir, env)
    env_files = svc.get("env_file")
    if isinstance(env_files, list):
        for item in env_files:
            if isinstance(item, dict) and isinstance(item.get("path"), str) and item["path"]:
                item["path"] = n.resolve_host_path(item["path"], base_dir, env)
    label_files = svc.get("label_file")
    if isinstance(label_files, list):
        svc["label_file"] = [n.resolve_host_path(f, base_dir, env) for f in label_files]
    vols = svc.get("volumes")
    if isinstance(vols, list):
        for v in vols:
            if isinstance(v, dict) and v.get("type") == "bind" and isinstance(v.get("source"), str):
                v["source"] = n.resolve_host_path(v["source"], base_dir, env)
    ext = svc.get("extends")
    if isinstance(ext, dict) and isinstance(ext.get("file"), str):
        ext["file"] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(ext["file"])))


def resolve_resource_paths(
    section: dict[str, Any], base_dir: str, env: Mapping[str, str]
) -> None:
    for spec in section.values():
        if isinstance(spec, dict) and isinstance(spec.get("file"), str):
            spec["file"] = n.resolve_host_path(spec["file"], base_dir, env)
