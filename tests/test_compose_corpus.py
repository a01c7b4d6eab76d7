"""Every compose file of the shared corpus loads, or is rejected as MANIFEST.tsv says; the
``config --format json`` output is stable and reads back into the same model."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from opencontainer.cli.main import CliContext, main
from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.compose.validate import validate_schema
from opencontainer.compose.yamlio import parse_yaml
from opencontainer.errors import ComposeError

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OPENCONTAINER_SHARED") or REPO.parent / "shared")
CORPUS = SHARED / "compose-corpus"

pytestmark = pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(),
                                reason="shared compose corpus not found")

ENV = {"HOME": "/home/tester", "PATH": "/usr/bin:/bin"}

# Files that need something the corpus does not carry; each entry says why.
NEEDS: dict[str, str] = {
    # every field is ${VARIABLE}: no single value is valid everywhere; checked by the schema
    "compose-go/schema/using-variables.yaml": "schema-only",
}
# Files whose loading warns about a required env_file that is missing (left out of the repo).
MISSING_ENV_FILE = {
    "redash/compose.yaml",  # env_file .env is not in the repository
    "docker-compose/pkg/e2e/fixtures/env_file/compose.yaml",  # /doesnotexist/.env on purpose
}


def _manifest() -> list[dict[str, str]]:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return []
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _cases() -> list[tuple[str, tuple[str, ...], bool]]:
    rows = _manifest()
    overrides: dict[str, str] = {}
    for r in rows:
        if r["role"] != "override":
            continue
        m = re.search(r"-f (\S+) -f (\S+)", r["notes"])
        d = os.path.dirname(r["corpus_path"])
        base = m.group(1) if m else (
            "docker-compose.test.yml" if r["corpus_path"].endswith(".test.override.yml") else "")
        if base:
            overrides[os.path.join(d, base)] = r["corpus_path"]
    out = []
    for r in rows:
        if r["role"] != "compose":
            continue
        files = [r["corpus_path"]]
        if r["corpus_path"] in overrides:
            files.append(overrides[r["corpus_path"]])
        out.append((r["corpus_path"], tuple(files), r["notes"].startswith("EXPECTED ERROR")))
    return out


CASES = _cases()
IDS = [c[0] for c in CASES]


def _opts(files: tuple[str, ...], **kw: object) -> LoadOptions:
    return LoadOptions(files=tuple(str(CORPUS / f) for f in files), env=ENV,
                       working_dir=str(CORPUS / os.path.dirname(files[0])), **kw)  # type: ignore[arg-type]


def test_manifest_has_cases() -> None:
    assert len(CASES) >= 35
    assert any(err for _, _, err in CASES)


@pytest.mark.parametrize(("path", "files", "expect_error"), CASES, ids=IDS)
def test_corpus_file_loads_or_is_rejected(
    path: str, files: tuple[str, ...], expect_error: bool
) -> None:
    if NEEDS.get(path) == "schema-only":
        text = (CORPUS / path).read_text()
        data, locs = parse_yaml(text, path)
        validate_schema(data, locs, path)  # valid as written
        with pytest.raises(ComposeError):  # with VARIABLE unset, a clear error, no crash
            load_project(_opts(files))
        return
    if expect_error:
        with pytest.raises(ComposeError) as info:
            load_project(_opts(files))
        err = info.value
        assert err.file and err.file.endswith(os.path.basename(path))
        assert err.line is not None and err.line > 0
        assert err.key
        return
    project = load_project(_opts(files))
    assert project.services or project.disabled_services
    for svc in project.services.values():
        for v in svc.volumes:
            if v.type == "bind":
                assert v.source is not None and os.path.isabs(v.source)
    if path in MISSING_ENV_FILE:
        assert any("env file" in w for w in project.warnings)
        with pytest.raises(ComposeError, match="env file"):
            project.check_env_files()


def _config_json(files: tuple[str, ...], cwd: Path, extra: list[str] | None = None) -> str:
    out, err = io.StringIO(), io.StringIO()
    argv = ["config", "--format", "json"]
    for f in files:
        argv += ["-f", str(f)]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        rc = main(argv + (extra or []), ctx=CliContext(env=dict(ENV), stdout=out, stderr=err))
    finally:
        os.chdir(old)
    assert rc == 0, err.getvalue()
    return out.getvalue()


LOADABLE = [c for c in CASES if not c[2] and c[0] not in NEEDS]


@pytest.mark.parametrize(("path", "files", "expect_error"), LOADABLE,
                         ids=[c[0] for c in LOADABLE])
def test_config_json_is_stable_and_round_trips(
    path: str, files: tuple[str, ...], expect_error: bool, tmp_path: Path
) -> None:
    cwd = CORPUS / os.path.dirname(files[0])
    first = _config_json(tuple(str(CORPUS / f) for f in files), cwd)
    second = _config_json(tuple(str(CORPUS / f) for f in files), cwd)
    assert first == second
    data = json.loads(first)
    assert list(data)[:2] == ["name", "services"]
    assert list(data["services"]) == sorted(data["services"])
    for svc in data["services"].values():
        assert list(svc) == sorted(svc)

    original = load_project(_opts(files))
    out = tmp_path / "compose.json"
    out.write_text(first)
    again = load_project(LoadOptions(files=(str(out),), env=ENV, working_dir=str(tmp_path),
                                     project_directory=original.working_dir))
    assert again.name == original.name
    assert again.to_dict() == original.to_dict()
    for name, svc in original.services.items():
        assert again.services[name].config_hash() == svc.config_hash()


def _yaml_files() -> list[str]:
    return [r["corpus_path"] for r in _manifest()
            if r["corpus_path"].endswith((".yaml", ".yml"))]


@pytest.mark.parametrize("path", _yaml_files())
def test_fast_parse_equals_round_trip_parse(path: str) -> None:
    """Data comes from the safe loader, locations from the round-trip one: same document."""
    from opencontainer.compose.yamlio import parse_yaml_rt

    text = (CORPUS / path).read_text()
    fast, lazy = parse_yaml(text, path)
    slow, eager = parse_yaml_rt(text, path)
    assert fast == slow
    assert dict(lazy.items()) == dict(eager.items())


# build-only services of files another file pulls in (extends / include): read through it,
# under the name that file gives them
_LOADED_THROUGH: dict[str, tuple[str, dict[str, str]]] = {
    "compose-go/loader/testdata/extends/sibling.yaml":
        ("compose-go/loader/testdata/extends/base.yaml", {"test": "with-build"}),
    "compose-go/loader/testdata/include/included.yaml":
        ("compose-go/loader/testdata/include/compose.yaml", {}),
}


def _build_cases() -> list[tuple[str, str]]:
    return [(r["corpus_path"], r["build_only_services"]) for r in _manifest()
            if r["build_only_services"] not in ("", "-")]


def _expected_build(build: object, base: Path) -> dict[str, object]:
    """``build:`` as written, in config's long form: a string is the context; the context is
    absolute (against the file's folder, "." when left out); list args/labels are mappings."""
    spec: dict[str, object] = ({"context": build} if isinstance(build, str)
                               else dict(build))  # type: ignore[call-overload]
    spec["context"] = os.path.normpath(base / str(spec.get("context") or "."))
    for key in ("args", "labels"):
        value = spec.get(key)
        if isinstance(value, list):
            spec[key] = dict(str(v).split("=", 1) for v in value)
    return spec


def test_every_build_only_corpus_file_is_covered() -> None:
    cases = _build_cases()
    assert len(cases) >= 9
    assert all(any(n for n in names.split(",")) for _, names in cases)


@pytest.mark.parametrize(("path", "names"), _build_cases(), ids=[c[0] for c in _build_cases()])
def test_build_fields_go_through_config_unchanged(path: str, names: str) -> None:
    top, renamed = _LOADED_THROUGH.get(path, (path, {}))
    data, _ = parse_yaml((CORPUS / path).read_text(), path)
    out = json.loads(_config_json((str(CORPUS / top),), CORPUS / os.path.dirname(top)))
    for name in names.split(","):
        written = data["services"][name]["build"]
        want = _expected_build(written, CORPUS / os.path.dirname(path))
        svc = out["services"][renamed.get(name, name)]
        assert svc["build"] == want, (name, svc["build"], want)
        assert "image" not in svc
