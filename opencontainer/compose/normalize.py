"""Pure parsers for the short syntaxes: durations, ports, volumes, commands, booleans.

They raise :class:`SyntaxProblem` (a ``ValueError``) with a short reason; the loader turns it
into a ComposeError that names file, line and key.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Mapping
from typing import Any


class SyntaxProblem(ValueError):
    """A value whose syntax is wrong; ``str()`` is the reason."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: Any) -> float:
    """Go-style duration (``1m30s``, ``10ms``, ``2h``, ``1.5s``) -> seconds. Numbers are
    seconds."""
    if isinstance(value, bool):
        raise SyntaxProblem(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        raise SyntaxProblem("invalid duration ''")
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise SyntaxProblem(f"invalid duration {value!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise SyntaxProblem(f"invalid duration {value!r}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Seconds -> Go's ``time.Duration.String()`` form (``1m30s``, ``500ms``, ``0s``)."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    ns = round(abs(seconds) * 1e9)
    if ns < 1000:
        out = f"{ns}ns"
    elif ns < 1_000_000:
        out = _trim(ns / 1e3) + "µs"
    elif ns < 1_000_000_000:
        out = _trim(ns / 1e6) + "ms"
    else:
        h, rem = divmod(ns, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        s = rem / 1e9
        out = ""
        if h:
            out += f"{h}h"
        if h or m:
            out += f"{m}m"
        out += _trim(s) + "s"
    return ("-" if neg else "") + out


def _trim(x: float) -> str:
    text = f"{x:.9f}".rstrip("0").rstrip(".")
    return text or "0"


_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0", ""}


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SyntaxProblem(f"{value!r} is not a boolean")


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise SyntaxProblem(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise SyntaxProblem(f"{value!r} is not an integer")
    text = str(value).strip()
    try:
        return int(text, 10)
    except ValueError:
        raise SyntaxProblem(f"{value!r} is not an integer") from None


def split_command(value: Any) -> tuple[str, ...] | None:
    """``command``/``entrypoint``: null = image default, a string is shell-word split."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(_str(v) for v in value)
    text = _str(value)
    try:
        return tuple(shlex.split(text, posix=True))
    except ValueError as exc:
        raise SyntaxProblem(f"cannot split command {text!r}: {exc}") from None


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


def scalar_str(v: Any) -> str:
    return _str(v)


# ---------------------------------------------------------------- key/value lists

def kv_map(value: Any, *, sep: str = "=") -> dict[str, str | None]:
    """``environment``/``labels``/``sysctls``/...: list of ``K=V`` (or ``K``) or mapping."""
    out: dict[str, str | None] = {}
    if value is None:
        return out
    if isinstance(value, Mapping):
        for k, v in value.items():
            out[str(k)] = None if v is None else _str(v)
        return out
    if isinstance(value, list):
        for item in value:
            text = _str(item)
            k, s, v = text.partition(sep)
            out[k] = v if s else None
        return out
    raise SyntaxProblem("must be a mapping or a list of KEY=VALUE strings")


def string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [_str(v) for v in value]
    return [_str(value)]


def extra_hosts(value: Any) -> list[str]:
    """``extra_hosts`` as ``host=ip`` strings (compose-go's canonical form)."""
    if value is None:
        return []
    out: list[str] = []
    if isinstance(value, Mapping):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                out.append(f"{host}={_str(ip)}")
        return out
    for item in value:
        text = _str(item)
        if "=" in text:
            out.append(text)
        elif ":" in text:
            host, _, ip = text.partition(":")
            out.append(f"{host}={ip}")
        else:
            raise SyntaxProblem(f"invalid extra_hosts entry {text!r}, expected HOST:IP")
    return out


# ---------------------------------------------------------------- ports

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
    except ValueError:
        raise SyntaxProblem(f"invalid {what} port {text!r}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise SyntaxProblem(f"invalid {what} port {text!r}")
    return lo, hi


def parse_port(spec: Any) -> list[dict[str, Any]]:
    """Short (``[[IP:](port|range):](port|range)[/proto]``) or long syntax -> long dicts."""
    if isinstance(spec, Mapping):
        return [_long_port(spec)]
    if isinstance(spec, bool):
        raise SyntaxProblem(f"invalid port {spec!r}")
    if isinstance(spec, (int, float)):
        spec = _str(spec)
    text = str(spec).strip()
    if not text:
        raise SyntaxProblem("invalid port ''")
    proto = "tcp"
    if "/" in text:
        text, _, proto = text.rpartition("/")
        proto = proto.lower()
        if proto not in _PROTOCOLS:
            raise SyntaxProblem(f"invalid protocol {proto!r} in port {spec!r}")
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise SyntaxProblem(f"invalid port {spec!r}")
        host_ip = text[1:end]
        text = text[end + 2 :]
        parts = text.split(":")
        if len(parts) == 1:
            parts = ["", parts[0]]
        elif len(parts) != 2:
            raise SyntaxProblem(f"invalid port {spec!r}")
        host, container = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            host, container = "", parts[0]
        elif len(parts) == 2:
            host, container = parts
        elif len(parts) == 3:
            host_ip, host, container = parts
        else:
            # an IPv6 address without brackets: everything but the last two parts
            host_ip = ":".join(parts[:-2])
            host, container = parts[-2], parts[-1]
    if not container:
        raise SyntaxProblem(f"no container port in {spec!r}")
    c_lo, c_hi = _port_range(container, "container")
    if c_lo == 0:
        raise SyntaxProblem(f"invalid container port {container!r}")
    h_lo = h_hi = 0
    if host:
        h_lo, h_hi = _port_range(host, "host")
        if (h_hi - h_lo) != (c_hi - c_lo) and c_hi != c_lo:
            raise SyntaxProblem(
                f"invalid ranges specified for container and host ports: {container} and {host}"
            )
    out: list[dict[str, Any]] = []
    for i in range(c_hi - c_lo + 1):
        published: str | None = None
        if host:
            published = f"{h_lo}-{h_hi}" if c_lo == c_hi and h_lo != h_hi else str(h_lo + i)
        d: dict[str, Any] = {"mode": "ingress", "target": c_lo + i, "protocol": proto}
        if published is not None:
            d["published"] = published
        if host_ip:
            d["host_ip"] = host_ip
        out.append(d)
    return out


def _long_port(spec: Mapping[str, Any]) -> dict[str, Any]:
    if "target" not in spec:
        raise SyntaxProblem("a port needs a target")
    try:
        target = int(_str(spec["target"]))
    except ValueError:
        raise SyntaxProblem(f"invalid container port {spec['target']!r}") from None
    if not 0 < target <= 65535:
        raise SyntaxProblem(f"invalid container port {target}")
    d: dict[str, Any] = {"target": target}
    pub = spec.get("published")
    if pub is not None and _str(pub) != "":
        pub_s = _str(pub)
        _port_range(pub_s, "published")
        d["published"] = pub_s
    proto = _str(spec.get("protocol") or "tcp").lower()
    if proto not in _PROTOCOLS:
        raise SyntaxProblem(f"invalid protocol {proto!r}")
    d["protocol"] = proto
    d["mode"] = _str(spec.get("mode") or "ingress")
    for k in ("host_ip", "name", "app_protocol"):
        if spec.get(k) not in (None, ""):
            d[k] = _str(spec[k])
    for k, v in spec.items():
        if isinstance(k, str) and k.startswith("x-"):
            d[k] = v
    return d


def port_key(d: Mapping[str, Any]) -> tuple[Any, ...]:
    return (d.get("host_ip"), d.get("target"), d.get("published"), d.get("protocol", "tcp"))


# ---------------------------------------------------------------- volumes

_PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
_CONSISTENCY = {"consistent", "cached", "delegated"}


def is_bind_source(src: str) -> bool:
    return src.startswith((".", "/", "~", "\\")) or (len(src) > 1 and src[1] == ":")


def parse_volume(spec: Any) -> dict[str, Any]:
    """Short (``SRC:DST[:MODE]``, ``DST``) or long syntax -> long dict (paths not resolved)."""
    if isinstance(spec, Mapping):
        return _long_volume(spec)
    text = _str(spec)
    if not text:
        raise SyntaxProblem("invalid empty volume specification")
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0], "volume": {}}
    if len(parts) > 3:
        raise SyntaxProblem(f"invalid volume specification {text!r}: too many colons")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not dst:
        raise SyntaxProblem(f"invalid volume specification {text!r}: empty target")
    if not src:
        raise SyntaxProblem(f"invalid volume specification {text!r}: empty source")
    d: dict[str, Any]
    if is_bind_source(src):
        d = {"type": "bind", "source": src, "target": dst, "bind": {"create_host_path": True}}
    else:
        d = {"type": "volume", "source": src, "target": dst, "volume": {}}
    for opt in (o for o in mode.split(",") if o):
        if opt == "ro":
            d["read_only"] = True
        elif opt == "rw":
            d.pop("read_only", None)
        elif opt in ("z", "Z"):
            if d["type"] == "bind":
                d["bind"]["selinux"] = opt
        elif opt == "nocopy":
            if d["type"] == "volume":
                d["volume"]["nocopy"] = True
        elif opt in _PROPAGATION:
            if d["type"] == "bind":
                d["bind"]["propagation"] = opt
        elif opt in _CONSISTENCY:
            d["consistency"] = opt
        else:
            raise SyntaxProblem(f"invalid volume mode {opt!r} in {text!r}")
    return d


def _long_volume(spec: Mapping[str, Any]) -> dict[str, Any]:
    d = dict(spec)
    vtype = _str(d.get("type") or "volume")
    if vtype not in ("bind", "volume", "tmpfs", "image", "npipe", "cluster"):
        raise SyntaxProblem(f"invalid volume type {vtype!r}")
    d["type"] = vtype
    if not d.get("target"):
        raise SyntaxProblem("a volume needs a target")
    d["target"] = _str(d["target"])
    if vtype == "bind" and not d.get("source"):
        raise SyntaxProblem("a bind mount needs a source")
    if "source" in d:
        if d["source"] in (None, ""):
            d.pop("source")
        else:
            d["source"] = _str(d["source"])
    if "read_only" in d:
        ro = parse_bool(d["read_only"])
        if ro:
            d["read_only"] = True
        else:
            d.pop("read_only")
    if isinstance(d.get("bind"), Mapping):
        b = dict(d["bind"])
        if "create_host_path" in b:
            b["create_host_path"] = parse_bool(b["create_host_path"])
        d["bind"] = b
    if isinstance(d.get("volume"), Mapping):
        v = dict(d["volume"])
        if "nocopy" in v:
            v["nocopy"] = parse_bool(v["nocopy"])
        d["volume"] = v
    if isinstance(d.get("tmpfs"), Mapping):
        t = dict(d["tmpfs"])
        if "size" in t:
            t["size"] = _size(t["size"])
        if "mode" in t:
            t["mode"] = parse_int(t["mode"])
        d["tmpfs"] = t
    return d


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?$", re.IGNORECASE)


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(_str(value).strip())
    if m is None:
        raise SyntaxProblem(f"invalid size {value!r}")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
    return int(float(m.group(1)) * mult[m.group(2).lower()])


def resolve_host_path(src: str, base_dir: str, env: Mapping[str, str]) -> str:
    """``~`` -> home, relative -> under ``base_dir``; normalised absolute path."""
    if src.startswith("~"):
        home = env.get("HOME") or os.path.expanduser("~")
        src = home + src[1:] if src == "~" or src.startswith("~/") else os.path.expanduser(src)
    if not os.path.isabs(src):
        src = os.path.join(base_dir, src)
    return os.path.normpath(src)


# ---------------------------------------------------------------- restart

def parse_restart(value: Any) -> tuple[str, int]:
    text = _str(value).strip()
    if text in ("no", "", "false"):
        return "no", 0
    if text in ("always", "unless-stopped"):
        return text, 0
    if text == "on-failure":
        return "on-failure", 0
    if text.startswith("on-failure:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            raise SyntaxProblem(f"invalid restart policy {text!r}") from None
        if n < 0:
            raise SyntaxProblem(f"invalid restart policy {text!r}")
        return "on-failure", n
    raise SyntaxProblem(
        f"invalid restart policy {text!r}, expected no, always, on-failure[:N] or unless-stopped"
    )


def mode_int(value: Any) -> int:
    """File modes: YAML ints are taken as written in octal by compose (``0440`` -> 0o440)."""
    if isinstance(value, bool):
        raise SyntaxProblem(f"invalid mode {value!r}")
    if isinstance(value, int):
        return value
    text = _str(value).strip()
    try:
        return int(text, 8)
    except ValueError:
        raise SyntaxProblem(f"invalid mode {value!r}") from None
