"""Short-syntax parsers: durations, ports, volumes, commands, restart (examples + properties)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencontainer.compose import normalize as n


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90.0), ("10ms", 0.01), ("500us", 0.0005), ("2h", 7200.0), ("1.5s", 1.5),
     ("0", 0.0), ("1h2m3s4ms", 3723.004), (30, 30.0), ("100ns", 1e-7), ("5µs", 5e-6)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert n.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10", "1x", "s", "1m 30s", "abc", True])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(n.SyntaxProblem):
        n.parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90.0, "1m30s"), (0.01, "10ms"), (0.0, "0s"), (3600.0, "1h0m0s"), (1.5, "1.5s"),
     (5e-6, "5µs")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert n.format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**15))
@settings(deadline=None, database=None)
def test_duration_format_parse_round_trip(ns: int) -> None:
    seconds = ns / 1e9
    assert n.parse_duration(n.format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


def test_parse_port_examples() -> None:
    assert n.parse_port("80") == [{"mode": "ingress", "target": 80, "protocol": "tcp"}]
    assert n.parse_port(8080) == [{"mode": "ingress", "target": 8080, "protocol": "tcp"}]
    assert n.parse_port("1.2.3.4:80:81/udp") == [
        {"mode": "ingress", "target": 81, "protocol": "udp", "published": "80",
         "host_ip": "1.2.3.4"}]
    assert [p["published"] for p in n.parse_port("10-11:20-21")] == ["10", "11"]
    assert n.parse_port("[::]:53:53/udp")[0]["host_ip"] == "::"


@pytest.mark.parametrize(
    "bad", ["", "abc", "80:", "1-2:3-5", "70000", "80/xyz", "0", "10-5", "a:b:c:d", True,
            "[::1]80"],
)
def test_parse_port_rejects(bad: object) -> None:
    with pytest.raises(n.SyntaxProblem):
        n.parse_port(bad)


_port = st.integers(min_value=1, max_value=65535)


@given(_port, _port, st.sampled_from(["tcp", "udp"]),
       st.sampled_from(["", "127.0.0.1", "0.0.0.0", "[::1]"]))
@settings(deadline=None, database=None)
def test_parse_port_property(host: int, container: int, proto: str, ip: str) -> None:
    spec = f"{ip + ':' if ip else ''}{host}:{container}/{proto}"
    (d,) = n.parse_port(spec)
    assert d["target"] == container and d["published"] == str(host) and d["protocol"] == proto
    assert d.get("host_ip", "") == ip.strip("[]")
    # the long form it produces parses to itself
    assert n.parse_port(d) == [{k: v for k, v in d.items()}] or n.parse_port(d)[0][
        "target"] == container


@given(st.integers(min_value=1, max_value=60000), st.integers(min_value=0, max_value=20),
       st.integers(min_value=1, max_value=60000))
@settings(deadline=None, database=None)
def test_port_ranges_expand(start: int, width: int, hstart: int) -> None:
    end, hend = start + width, hstart + width
    if end > 65535 or hend > 65535:
        return
    ports = n.parse_port(f"{hstart}-{hend}:{start}-{end}")
    assert [p["target"] for p in ports] == list(range(start, end + 1))
    assert [p["published"] for p in ports] == [str(h) for h in range(hstart, hend + 1)]


@given(st.text(max_size=30))
@settings(max_examples=400, deadline=None, database=None)
def test_parse_port_never_crashes(text: str) -> None:
    try:
        out = n.parse_port(text)
    except n.SyntaxProblem:
        return
    assert all(1 <= p["target"] <= 65535 for p in out)


def test_parse_volume_examples() -> None:
    assert n.parse_volume("./a:/b") == {"type": "bind", "source": "./a", "target": "/b",
                                         "bind": {"create_host_path": True}}
    assert n.parse_volume("data:/b:ro") == {"type": "volume", "source": "data", "target": "/b",
                                             "volume": {}, "read_only": True}
    assert n.parse_volume("/only") == {"type": "volume", "target": "/only", "volume": {}}
    assert n.parse_volume("~/x:/y:rw,rshared")["bind"]["propagation"] == "rshared"
    assert n.parse_volume({"type": "bind", "source": ".", "target": "/x",
                           "read_only": "true"})["read_only"] is True


@pytest.mark.parametrize("bad", ["", "a:b:c:d", "a::ro", ":/x", "/a:/b:bogus",
                                 {"type": "bind", "target": "/x"}, {"type": "weird",
                                                                     "target": "/x"}])
def test_parse_volume_rejects(bad: object) -> None:
    with pytest.raises(n.SyntaxProblem):
        n.parse_volume(bad)


_path = st.from_regex(r"/[a-z0-9_]{1,8}(/[a-z0-9_]{1,8}){0,2}", fullmatch=True)
_name = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)


@given(st.one_of(_path, _path.map(lambda p: "." + p), _name), _path,
       st.sampled_from(["", ":ro", ":rw"]))
@settings(deadline=None, database=None)
def test_parse_volume_property(src: str, dst: str, mode: str) -> None:
    d = n.parse_volume(f"{src}:{dst}{mode}")
    assert d["target"] == dst and d["source"] == src
    assert d["type"] == ("bind" if src[0] in "./" else "volume")
    assert d.get("read_only", False) == (mode == ":ro")


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None, database=None)
def test_parse_volume_never_crashes(text: str) -> None:
    with contextlib.suppress(n.SyntaxProblem):
        n.parse_volume(text)


def test_resolve_host_path() -> None:
    env = {"HOME": "/home/me"}
    assert n.resolve_host_path("./a/../b", "/proj", env) == "/proj/b"
    assert n.resolve_host_path("~/x", "/proj", env) == "/home/me/x"
    assert n.resolve_host_path("/abs", "/proj", env) == "/abs"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("echo hi", ("echo", "hi")), ("sh -c 'a b'", ("sh", "-c", "a b")), (["a b"], ("a b",)),
     ("", ()), (None, None), ('echo "x \\" y"', ("echo", 'x " y'))],
)
def test_split_command(value: object, expected: tuple[str, ...] | None) -> None:
    assert n.split_command(value) == expected


def test_split_command_unbalanced_quote() -> None:
    with pytest.raises(n.SyntaxProblem):
        n.split_command("echo 'oops")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("no", ("no", 0)), ("always", ("always", 0)), ("on-failure", ("on-failure", 0)),
     ("on-failure:5", ("on-failure", 5)), ("unless-stopped", ("unless-stopped", 0))],
)
def test_parse_restart(value: str, expected: tuple[str, int]) -> None:
    assert n.parse_restart(value) == expected


def test_kv_map_and_extra_hosts() -> None:
    assert n.kv_map(["A=1", "B", "C=x=y"]) == {"A": "1", "B": None, "C": "x=y"}
    assert n.kv_map({"A": 1, "B": None, "C": True}) == {"A": "1", "B": None, "C": "true"}
    assert n.extra_hosts(["a:1.2.3.4", "b=::1"]) == ["a=1.2.3.4", "b=::1"]
    assert n.extra_hosts({"a": ["1.1.1.1", "2.2.2.2"]}) == ["a=1.1.1.1", "a=2.2.2.2"]
