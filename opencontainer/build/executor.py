"""Runs a parsed Dockerfile: the stages the target needs, each step cached or executed.

A stage's state is its image config (with history and diff_ids), its layers, ``tree``: the
image of the store of the last filesystem step (config-only steps only change the config), and
``files``: where the stage's filesystem is now (:class:`Files`). A filesystem step (RUN, COPY,
ADD) makes one gzip layer, records a new image of the store (without a tree) and caches the
state under a key chained from the parent's key, the instruction and the checksums of what it
reads.

A stage copies a tree at most once: its first step that needs files to write to copies the
base image's tree into a work tree of its own; RUN runs in that work tree in place, in a
throwaway container under the runtime (:class:`~opencontainer.engine.runner.ProotRunner`:
same fake root, same backends as ``run``), its changes found by comparing
:func:`~opencontainer.image.commit.snapshot` s of before and after; a COPY's layer is applied
only when something reads the files next. The result's work tree becomes its tree in the store
(a rename); the steps' images keep no tree (a cache hit on one applies its layer).
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shlex
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
import attrs

from ..errors import BuildError, ContainerError, OpenContainerError
from ..image.store import ImageRecord, ImageStore, LayerInfo
from ..paths import Paths
from . import dockerfile as df
from .cache import BuildCache, chain
from .context import Entry, Source, archive_entries, checksum, entry_of, write_entries

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SMALL_LAYER = 1 << 20  # compressed bytes: applied without decompression and hash threads


@attrs.frozen(kw_only=True)
class BuildOptions:
    context: Path
    dockerfile: Path | None = None  # None: <context>/Dockerfile (unless ``text``)
    text: str | None = None  # the Dockerfile itself (``-f -``, ``dockerfile_inline``)
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = attrs.field(factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: Mapping[str, str] = attrs.field(factory=dict)
    platform: str | None = None
    quiet: bool = False
    # the process runs nothing but this build (the ``build`` command): an old proot's ENOSYS
    # filter (runtime/seccomp.py) goes on it once, inherited by every RUN step's proot,
    # instead of a wrapper process per step (~20 ms each). Never in a process that goes on to
    # start containers: the filter sets no_new_privs (no setuid newuidmap afterwards).
    filter_here: bool = False


class Progress:
    """``--progress plain``: BuildKit's numbered lines, to ``write`` (stderr)."""

    def __init__(self, write: Callable[[str], None] | None) -> None:
        self._write = write
        self.n = 0
        self.started = 0.0

    def line(self, text: str) -> None:
        if self._write is not None:
            self._write(text)

    def step(self, text: str) -> int:
        self.n += 1
        self.started = time.monotonic()
        self.line(f"#{self.n} {text}")
        return self.n

    def instruction(self, label: str, index: int, total: int, text: str) -> int:
        """Instruction ``index`` of ``total`` of stage ``label`` begins (1 is its FROM, 0 an
        ONBUILD trigger)."""
        return self.step(f"[{label} {index}/{total}] {text}" if index else f"[{label}] {text}")

    def cached(self) -> None:
        self.line(f"#{self.n} CACHED")

    def done(self) -> None:
        self.line(f"#{self.n} DONE {time.monotonic() - self.started:.1f}s")

    def output(self, data: str) -> None:
        elapsed = time.monotonic() - self.started
        for ln in data.splitlines():
            self.line(f"#{self.n} {elapsed:.3f} {ln}")


@attrs.define
class Files:
    """Where a stage's filesystem is: ``root`` (None: empty) -- a tree of the store (read
    only) or, ``owned``, the build's own work tree -- with the layer blobs ``pending`` still
    to be applied on top. Handed from a step's state to the next one's (a work tree changes in
    place)."""

    root: Path | None = None
    owned: bool = False
    pending: list[str] = attrs.field(factory=list)
    # the snapshot of the work tree as the last RUN left it (image.commit.Snapshot), for the
    # next RUN to compare with; None once anything else changed the tree
    snap: dict[str, Any] | None = None


@attrs.define
class StageState:
    config: dict[str, Any]
    layers: list[dict[str, Any]]
    infos: list[LayerInfo]
    tree: ImageRecord | None
    key: str
    args: dict[str, str] = attrs.field(factory=dict)
    shell: tuple[str, ...] = DEFAULT_SHELL
    onbuild: list[str] = attrs.field(factory=list)
    files: Files = attrs.field(factory=Files)

    def to_cache(self) -> dict[str, Any]:
        return {"config": self.config, "layers": self.layers,
                "infos": [attrs.asdict(i) for i in self.infos],
                "image": self.tree.digest if self.tree is not None else None}

    @property
    def c(self) -> dict[str, Any]:
        cfg: dict[str, Any] = self.config.setdefault("config", {})
        return cfg

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.c.get("Env") or []:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out

    def set_env(self, key: str, value: str) -> None:
        env = [e for e in (self.c.get("Env") or []) if str(e).partition("=")[0] != key]
        self.c["Env"] = [*env, f"{key}={value}"]

    def history(self, created_by: str, *, empty: bool) -> None:
        # the time of the last layer (or the base image's): a rebuild gives the same image
        entry: dict[str, Any] = {"created_by": created_by, "comment": "buildkit.dockerfile.v0"}
        if self.config.get("created"):
            entry = {"created": self.config["created"], **entry}
        if empty:
            entry["empty_layer"] = True
        self.config["history"] = [*(self.config.get("history") or []), entry]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _platform_args(platform: str | None) -> dict[str, str]:
    from ..image.platform import Platform

    host = Platform.host()
    target = Platform.parse(platform) if platform else host

    def parts(p: Any, prefix: str) -> dict[str, str]:
        text = f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else "")
        return {f"{prefix}PLATFORM": text, f"{prefix}OS": p.os,
                f"{prefix}ARCH": p.architecture, f"{prefix}VARIANT": p.variant or ""}

    return {**parts(target, "TARGET"), **parts(host, "BUILD")}


class Builder:
    """One build: ``await Builder(paths, env, options, progress).build()``."""

    def __init__(self, paths: Paths, env: Mapping[str, str], options: BuildOptions,
                 progress: Progress | None = None,
                 output: Callable[[bytes], None] | None = None) -> None:
        self.paths = paths
        self.env = dict(env)
        self.opts = options
        self.progress = progress or Progress(None)
        self.output = output
        self.store = ImageStore(paths.store)
        self.cache = BuildCache(self.store)
        self.dockerfile: df.Dockerfile | None = None
        self.results: dict[int, StageState] = {}
        self.used_args: set[str] = set()
        self.context: Source | None = None
        self._work: set[Path] = set()  # the work trees made (gone once renamed into the store)
        self._trash: list[Path] = []  # work trees no state uses any more, step folders
        self._new: list[Any] = []  # images for the store's index (NewImage)
        self._filter: bool | None = None  # filter_here: whether the filter is on
        # the RUN steps' container (one after the other): its name, and its folder's link to
        # the work tree it runs in (made once; hosts, hostname, resolv.conf stay)
        self._step_name = f"build-{os.urandom(6).hex()}"
        self.zygotes: Any = None  # the engine service's started steps (engine/zygotes.py)
        self._step_link: Path | None = None
        self._proot: tuple[Path, Any] | None = None  # the steps' proot binary, capabilities

    # -- the whole build ----------------------------------------------------------------------
    def load(self) -> df.Dockerfile:
        opts = self.opts
        if not opts.context.is_dir():
            raise BuildError(f"unable to prepare context: path {str(opts.context)!r} not found")
        if opts.text is not None:
            name = "Dockerfile"
            text = opts.text
        else:
            path = opts.dockerfile or opts.context / "Dockerfile"
            name = str(path.name) if opts.dockerfile is None else str(opts.dockerfile)
            try:
                text = path.read_text()
            except FileNotFoundError:
                raise BuildError(f"failed to read dockerfile: open {path}: no such file or "
                                 "directory") from None
            except OSError as exc:
                raise BuildError(f"failed to read dockerfile {path}: {exc.strerror}") from None
        self.dockerfile = df.parse(text, name)
        self.context = Source.context(opts.context, opts.dockerfile)
        return self.dockerfile

    def _target(self, d: df.Dockerfile) -> df.Stage:
        if not self.opts.target:
            return d.stages[-1]
        found = d.stage(self.opts.target)
        if found is None or found.name is None:
            raise BuildError(f"failed to reach build target {self.opts.target} in "
                             f"{d.file}: no stage of that name")
        return found

    def step_count(self) -> int:
        """How many instructions the build runs, each stage's FROM included (ONBUILD
        triggers aside): the classic builder's ``Step i/N``."""
        d = self.dockerfile or self.load()
        target = self._target(d)
        used = set(self.used_args)
        needed = self._needed(d, target, self._meta_args(d))
        self.used_args = used
        return sum(len(st.instructions) + 1 for st in d.stages if st.index in needed)

    async def build(self) -> ImageRecord:
        d = self.dockerfile or self.load()
        target = self._target(d)
        meta = self._meta_args(d)
        needed = self._needed(d, target, meta)
        self.store.root.mkdir(parents=True, exist_ok=True)
        try:
            with self.store.pull_guard():
                return await self._build(d, target, meta, needed)
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(OpenContainerError, OSError):
                    self._flush()  # what the cache's entries name, even after a failed step
                await anyio.to_thread.run_sync(self._cleanup)

    async def _build(self, d: df.Dockerfile, target: df.Stage, meta: dict[str, str],
                     needed: set[int]) -> ImageRecord:
        for st in d.stages:
            if st.index in needed:
                self.results[st.index] = await self._stage(st, meta)
        final = self.results[target.index]
        for k, v in self.opts.labels.items():
            final.c.setdefault("Labels", {})
            final.c["Labels"] = {**(final.c.get("Labels") or {}), k: v}
        # the result (shown by images, even when a step's image already), tagged
        rec = await self._materialize(final, tags=self.opts.tags)
        unused = sorted(set(self.opts.build_args) - self.used_args - set(df.PROXY_ARGS)
                        - set(df.PLATFORM_ARGS))
        if unused:
            self.progress.line(f"[Warning] One or more build-args {unused} were not consumed")
        return rec

    def _meta_args(self, d: df.Dockerfile) -> dict[str, str]:
        meta: dict[str, str] = _platform_args(self.opts.platform)
        for ins in d.meta_args:
            ex = df.Expander(meta, d.escape, ins.error)
            for key, value in df.key_values(ins, ex):
                if key in self.opts.build_args:
                    meta[key] = self.opts.build_args[key]
                    self.used_args.add(key)
                elif value != "\0":
                    meta[key] = value
        return meta

    def _needed(self, d: df.Dockerfile, target: df.Stage, meta: Mapping[str, str]) -> set[int]:
        """The stages ``target`` depends on (FROM another stage, COPY --from=stage)."""
        needed: set[int] = set()

        def visit(st: df.Stage) -> None:
            if st.index in needed:
                return
            needed.add(st.index)
            base = df.Expander(meta, d.escape, st.from_.error).word(st.base)
            dep = self._earlier_stage(d, base, st.index)
            if dep is not None:
                visit(dep)
            for ins in st.instructions:
                ref = ins.flag("from")
                if ins.cmd == "COPY" and ref:
                    dep = self._earlier_stage(d, df.Expander(meta, d.escape).word(ref), st.index)
                    if dep is not None:
                        visit(dep)
                for k, v in ins.flags:
                    if k == "mount" and "from=" in v:
                        for part in v.split(","):
                            if part.startswith("from="):
                                dep = self._earlier_stage(d, part[5:], st.index)
                                if dep is not None:
                                    visit(dep)

        visit(target)
        return needed

    @staticmethod
    def _earlier_stage(d: df.Dockerfile, ref: str, before: int) -> df.Stage | None:
        st = d.stage(ref)
        if st is not None and st.index < before:
            return st
        return None

    # -- one stage -----------------------------------------------------------------------------
    async def _stage(self, st: df.Stage, meta: Mapping[str, str]) -> StageState:
        d = self.dockerfile
        assert d is not None
        ex = df.Expander(meta, d.escape, st.from_.error)
        base = ex.word(st.base)
        platform = ex.word(st.platform) if st.platform else self.opts.platform
        total = len(st.instructions) + 1
        label = st.name or f"stage-{st.index}"
        self.progress.instruction(label, 1, total, f"FROM {base}")
        state = await self._from(st, base, platform)
        for trigger in state.onbuild:
            parsed = df.parse(f"FROM scratch\n{trigger}", f"{d.file} (ONBUILD of {base})")
            for ins in parsed.stages[0].instructions:
                state = await self._step(st, ins, state, meta, label, 0, total)
        state.onbuild = []
        for i, ins in enumerate(st.instructions, start=2):
            state = await self._step(st, ins, state, meta, label, i, total)
        return state

    async def _from(self, st: df.Stage, base: str, platform: str | None) -> StageState:
        d = self.dockerfile
        assert d is not None
        if base == "scratch":
            from ..image.platform import Platform

            p = Platform.parse(platform) if platform else Platform.host()
            cfg: dict[str, Any] = {"architecture": p.architecture, "os": p.os,
                                   "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
                                   "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            if p.variant:
                cfg["variant"] = p.variant
            self.progress.done()
            return StageState(config=cfg, layers=[], infos=[], tree=None,
                              key=chain("scratch", platform or ""))
        dep = self._earlier_stage(d, base, st.index)
        if dep is not None:
            prev = self.results[dep.index]
            files = Files()
            if prev.tree is not None or prev.files.root is not None or prev.files.pending:
                rec = await self._materialize(prev, intermediate=True)
                files = Files(rec.rootfs)
            self.progress.done()
            return StageState(config=json.loads(json.dumps(prev.config)),
                              layers=list(prev.layers), infos=list(prev.infos),
                              tree=prev.tree, key=chain(prev.key, "FROM-stage"),
                              shell=prev.shell, files=files)
        rec = await self._image(base, platform, st.from_)
        cfg = json.loads(self.store.read_blob(rec.config_digest))
        manifest = json.loads(self.store.read_blob(rec.digest))
        onbuild = list((cfg.get("config") or {}).get("OnBuild") or [])
        if onbuild:
            cfg["config"]["OnBuild"] = None
        self.progress.done()
        return StageState(config=cfg, layers=list(manifest.get("layers") or []),
                          infos=list(rec.layers), tree=rec,
                          key=chain("image", rec.config_digest), onbuild=onbuild,
                          files=Files(rec.rootfs))

    async def _image(self, ref: str, platform: str | None, ins: df.Instruction) -> ImageRecord:
        from ..image.policy import local_image

        if not self.opts.pull:  # a local image: no registry client (aiohttp) to import
            with contextlib.suppress(OpenContainerError):
                found = local_image(ref, self.store, "missing")
                if found is not None:
                    return found
        from ..image.pull import ensure_image

        policy = "always" if self.opts.pull else "missing"
        try:
            return await ensure_image(ref, paths=self.paths, policy=policy, platform=platform)
        except OpenContainerError as exc:
            raise ins.error(f"{ref}: {exc}") from None

    # -- one instruction -----------------------------------------------------------------------
    async def _step(self, st: df.Stage, ins: df.Instruction, state: StageState,
                    meta: Mapping[str, str], label: str, i: int, total: int) -> StageState:
        d = self.dockerfile
        assert d is not None
        scope = {**state.args, **state.env()}
        ex = df.Expander(scope, d.escape, ins.error)
        shown = ins.original if len(ins.original) < 200 else ins.original[:197] + "..."
        self.progress.instruction(label, i, total, shown)
        cmd = ins.cmd
        if cmd == "ARG":
            for key, value in df.key_values(ins, df.Expander(scope, d.escape, ins.error)):
                if key in self.opts.build_args:
                    state.args[key] = self.opts.build_args[key]
                    self.used_args.add(key)
                elif value != "\0":
                    state.args[key] = value
                elif key in meta:
                    state.args[key] = meta[key]
            # values count where they are used (RUN's environment, substituted words)
            state.key = chain(state.key, ins.original)
            self.progress.done()
            return state
        if cmd in ("RUN", "COPY", "ADD"):
            return await self._fs_step(ins, state, ex)
        self._config_step(ins, state, ex)
        self.progress.done()
        return state

    def _config_step(self, ins: df.Instruction, state: StageState, ex: df.Expander) -> None:
        cmd, c = ins.cmd, state.c
        text = ins.rest.strip()
        shown = f"{cmd} {text}"
        if cmd == "ENV":
            pairs = df.key_values(ins, ex)
            for k, v in pairs:
                state.set_env(k, v)
            shown = "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
        elif cmd == "LABEL":
            pairs = df.key_values(ins, ex)
            c["Labels"] = {**(c.get("Labels") or {}), **dict(pairs)}
            shown = "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
        elif cmd == "MAINTAINER":
            state.config["author"] = text
        elif cmd == "WORKDIR":
            path = ex.word(text)
            if not path:
                raise ins.error("WORKDIR requires exactly one argument")
            cur = c.get("WorkingDir") or "/"
            c["WorkingDir"] = posixpath.normpath(posixpath.join(cur, path))
            shown = f"WORKDIR {c['WorkingDir']}"
        elif cmd == "USER":
            user = ex.word(text)
            if not user:
                raise ins.error("USER requires exactly one argument")
            c["User"] = user
            shown = f"USER {user}"
        elif cmd == "EXPOSE":
            ports = dict(c.get("ExposedPorts") or {})
            for p in ex.words(text):
                ports[p if "/" in p else f"{p}/tcp"] = {}
            c["ExposedPorts"] = ports
        elif cmd == "VOLUME":
            vols = dict(c.get("Volumes") or {})
            for v in (list(ins.json) if ins.json is not None else ex.words(text)):
                if not v:
                    raise ins.error("VOLUME specified can not be an empty string")
                vols[ex.word(v) if ins.json is not None else v] = {}
            c["Volumes"] = vols
        elif cmd == "STOPSIGNAL":
            c["StopSignal"] = ex.word(text)
        elif cmd in ("CMD", "ENTRYPOINT"):
            argv = list(ins.json) if ins.json is not None else [*state.shell, text]
            key = "Cmd" if cmd == "CMD" else "Entrypoint"
            c[key] = argv
            if cmd == "ENTRYPOINT" and not state.config.get("_cmd_set"):
                c["Cmd"] = None  # ENTRYPOINT resets an inherited CMD
            if cmd == "CMD":
                state.config["_cmd_set"] = True
            shown = f"{cmd} {json.dumps(argv)}"
        elif cmd == "SHELL":
            assert ins.json is not None
            if not ins.json:
                raise ins.error("SHELL requires at least one argument")
            state.shell = tuple(ins.json)
            c["Shell"] = list(ins.json)
        elif cmd == "HEALTHCHECK":
            c["Healthcheck"] = self._healthcheck(ins, state, text)
        elif cmd == "ONBUILD":
            c["OnBuild"] = [*(c.get("OnBuild") or []), text]
        else:  # pragma: no cover - the parser knows every instruction
            raise ins.error("unsupported instruction")
        state.key = chain(state.key, shown)
        state.history(f"{shown} # buildkit", empty=True)

    def _healthcheck(self, ins: df.Instruction, state: StageState, text: str) -> dict[str, Any]:
        words = text.split(None, 1)
        kind = words[0].upper() if words else ""
        if kind == "NONE":
            return {"Test": ["NONE"]}
        if kind != "CMD" or len(words) < 2:
            raise ins.error("HEALTHCHECK requires CMD (or NONE) and a command")
        rest = words[1].strip()
        parsed = df._split_json(rest)
        test = ["CMD", *parsed] if parsed is not None else ["CMD-SHELL", rest]
        hc: dict[str, Any] = {"Test": test}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                          ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            value = ins.flag(flag)
            if value:
                hc[key] = df.duration(value, ins)
        retries = ins.flag("retries")
        if retries:
            if not retries.isdigit():
                raise ins.error(f"--retries must be a number, not {retries!r}")
            hc["Retries"] = int(retries)
        return hc

    # -- filesystem steps ----------------------------------------------------------------------
    async def _fs_step(self, ins: df.Instruction, state: StageState,
                       ex: df.Expander) -> StageState:
        if ins.cmd == "RUN":
            argv, shown = self._run_argv(ins, state, ex)
            run_env = {k: v for k, v in state.args.items()}
            key = chain(state.key, "RUN", json.dumps(argv),
                        json.dumps(run_env, sort_keys=True))
            entries: list[Entry] | None = None
        else:
            # the directories the entries need are a function of the state: not in the key
            entries, shown, parents = await self._copy_entries(ins, state, ex)
            key = chain(state.key, shown, await anyio.to_thread.run_sync(checksum, entries))
        if not self.opts.no_cache:
            hit = self.cache.get(key)
            if hit is not None:
                self.progress.cached()
                return self._from_cache(hit, state, key)
        if entries is None:
            blob = await self._run(argv, state, ins)
        else:
            entries = parents(await self._readable(state)) + entries
            blob = await self._write_layer(entries)
            state.files.pending.append(blob[0])
        new = await self._commit(state, blob, f"{shown} # buildkit", key)
        self.cache.put(key, new.to_cache())
        self.progress.done()
        return new

    def _from_cache(self, hit: Mapping[str, Any], state: StageState, key: str) -> StageState:
        tree = self.store.resolve(hit["image"]) if hit.get("image") else None
        files = state.files
        if tree is not None and tree.rootfs.is_dir():
            self._discard(files)
            files = Files(tree.rootfs)
        elif hit["layers"]:  # the step's layer on top of the files so far
            files.pending.append(str(hit["layers"][-1]["digest"]))
        return StageState(config=hit["config"], layers=list(hit["layers"]),
                          infos=[LayerInfo(**i) for i in hit["infos"]], tree=tree, key=key,
                          args=state.args, shell=state.shell, files=files)

    def _run_argv(self, ins: df.Instruction, state: StageState,
                  ex: df.Expander) -> tuple[list[str], str]:
        if ins.json is not None:
            return list(ins.json), f"RUN {json.dumps(list(ins.json))}"
        text = ins.rest.strip()
        if ins.heredocs:
            only = df._HEREDOC.fullmatch(text)
            if only and len(ins.heredocs) == 1:
                body = ins.heredocs[0].content
                if body.startswith("#!"):
                    first = body.splitlines()[0][2:].split()
                    return [*first, "-c", body], f"RUN {text}"
                return [*state.shell, body], f"RUN {text}"
            script = text + "\n" + "".join(f"{h.content}{h.name}\n" for h in ins.heredocs)
            return [*state.shell, script], f"RUN {text}"
        return [*state.shell, text], f"RUN {' '.join(state.shell)} {text}"

    async def _copy_entries(
            self, ins: df.Instruction, state: StageState, ex: df.Expander,
    ) -> tuple[list[Entry], str, Callable[[Path | None], list[Entry]]]:
        """The entries a COPY/ADD writes, how it is shown, and what gives the directories
        they need that the stage's files (the tree passed to it) lack."""
        cmd = ins.cmd
        words = [ex.word(w) for w in ins.json] if ins.json is not None else ex.words(ins.rest)
        if len(words) < 2 and not ins.heredocs:
            raise ins.error(f"{cmd} requires at least two arguments")
        if ins.heredocs and len(words) < 2:
            srcs_raw, dest_raw = [], words[-1] if words else ""
        else:
            srcs_raw, dest_raw = words[:-1], words[-1]
        workdir = state.c.get("WorkingDir") or "/"
        dest = posixpath.join(workdir, dest_raw)
        dest_is_dir = dest_raw.endswith("/") or dest_raw in (".", "..") or dest_raw.endswith("/.")
        dest = posixpath.normpath(dest)
        uid, gid = await self._chown(ins, ex, state)
        chmod_text = ins.flag("chmod")
        chmod = None
        if chmod_text:
            try:
                chmod = int(ex.word(chmod_text), 8)
            except ValueError:
                raise ins.error(f"invalid --chmod {chmod_text!r}: an octal mode") from None
        source = self.context
        assert source is not None
        ref = ins.flag("from")
        if ref:
            source = await self._from_source(ex.word(ref), ins)
        entries: list[Entry] = []
        heredoc_names = {h.name for h in ins.heredocs}
        plain = [s for s in srcs_raw if not (s.startswith("<<") and
                                              s.lstrip("<-").strip("'\"") in heredoc_names)]
        now = time.time()
        multiple = len(srcs_raw) > 1 or any(set(s) & set("*?[") for s in plain)
        if multiple and not dest_is_dir and not dest_raw.endswith("/"):
            raise ins.error(f"When using {cmd} with more than one source file, the "
                                "destination must be a directory and end with a /")
        for h in ins.heredocs:
            content = h.content
            if h.expand:
                content = df.Expander({**state.args, **state.env()}, ex.escape,
                                      ins.error).word(content.replace('"', '\\"'))
            path = posixpath.join(dest, h.name) if dest_is_dir or multiple else dest
            entries.append(Entry(path.lstrip("/"), "file", chmod if chmod is not None else 0o644,
                                 uid, gid, data=content.encode(), mtime=now))
        for raw in plain:
            if cmd == "ADD" and urllib.parse.urlparse(raw).scheme in ("http", "https"):
                entries.append(await self._download(raw, dest, dest_is_dir, uid, gid, chmod, ins))
                continue
            try:
                matches = source.expand(raw)
            except BuildError as exc:
                raise ins.error(str(exc)) from None
            for rel in matches:
                host = source.root / rel if rel else source.root
                if host.is_dir() and not host.is_symlink():
                    for sub in source.walk(rel):
                        e = entry_of(host / sub, posixpath.join(dest, sub).lstrip("/"),
                                     uid=uid, gid=gid, chmod=chmod)
                        if e is not None:
                            entries.append(e)
                    continue
                if cmd == "ADD" and ref is None:
                    extracted = archive_entries(host, dest, uid=None if uid == 0 else uid,
                                                gid=None if gid == 0 else gid)
                    if extracted is not None:
                        entries += extracted
                        continue
                name = posixpath.basename(rel) if rel else ""
                path = posixpath.join(dest, name) if (dest_is_dir or multiple) else dest
                e = entry_of(host, path.lstrip("/"), uid=uid, gid=gid, chmod=chmod)
                if e is not None:
                    entries.append(e)
        shown = f"{cmd} " + " ".join(
            [f"--{k}={v}" for k, v in ins.flags] + [*srcs_raw, dest_raw])
        dest_dir = dest_is_dir or multiple

        def parents(tree: Path | None) -> list[Entry]:
            return self._parents(entries, dest, dest_dir, tree, uid, gid)

        return entries, shown, parents

    @staticmethod
    def _parents(entries: list[Entry], dest: str, dest_dir: bool, tree: Path | None,
                 uid: int, gid: int) -> list[Entry]:
        """The directories the entries need that ``tree`` (the stage's files) lacks (the COPY
        destination is created with the --chown owner, as in Docker)."""
        have = {e.path for e in entries}
        needed: list[Entry] = []
        seen: set[str] = set()
        wanted = [e.path for e in entries]
        if dest_dir and dest.strip("/"):
            wanted.append(dest.strip("/") + "/x")
        for path in wanted:
            parts = path.split("/")[:-1]
            for k in range(1, len(parts) + 1):
                d = "/".join(parts[:k])
                if d in seen or d in have:
                    continue
                seen.add(d)
                if tree is not None and os.path.lexists(tree / d):
                    continue
                owner = (uid, gid) if ("/" + d).startswith(dest.rstrip("/")) else (0, 0)
                needed.append(Entry(d, "dir", 0o755, owner[0], owner[1], mtime=time.time()))
        return needed

    async def _chown(self, ins: df.Instruction, ex: df.Expander,
                     state: StageState) -> tuple[int, int]:
        text = ins.flag("chown")
        if not text:
            return 0, 0
        spec = ex.word(text)
        user, _, group = spec.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            return int(user), int(group or user)
        root = await self._readable(state)
        if root is None:
            raise ins.error(f"unable to convert uid/gid chown string {spec} to host mapping: "
                            "no /etc/passwd in this stage")
        from ..runtime.spec import resolve_user

        try:
            resolved = resolve_user(root, spec)
        except ContainerError as exc:
            raise ins.error(str(exc)) from None
        gid = resolved.gid
        if not group and not user.isdigit():
            gid = resolved.gid
        return resolved.uid, gid

    async def _from_source(self, ref: str, ins: df.Instruction) -> Source:
        d = self.dockerfile
        assert d is not None
        st = d.stage(ref)
        if st is not None and st.index in self.results:
            rec = await self._materialize(self.results[st.index], intermediate=True)
            return Source(rec.rootfs, what=f"stage {ref}")
        rec = await self._image(ref, self.opts.platform, ins)
        return Source(rec.rootfs, what=f"image {ref}")

    async def _download(self, url: str, dest: str, dest_dir: bool, uid: int, gid: int,
                        chmod: int | None, ins: df.Instruction) -> Entry:
        import urllib.request  # ~20 ms of imports (http.client, email): only for ADD <url>

        def fetch() -> bytes:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return bytes(resp.read())

        try:
            data = await anyio.to_thread.run_sync(fetch)
        except OSError as exc:
            raise ins.error(f"failed to download {url}: {exc}") from None
        name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
        path = posixpath.join(dest, name) if dest_dir else dest
        return Entry(path.lstrip("/"), "file", chmod if chmod is not None else 0o600, uid, gid,
                     data=data, mtime=time.time())

    # -- layers and images ---------------------------------------------------------------------
    async def _write_layer(self, entries: Sequence[Entry]) -> tuple[str, str, int]:
        self.store.blobs.mkdir(parents=True, exist_ok=True)
        partial = self.store.blobs / f".build-{os.getpid()}-{time.monotonic_ns()}.partial"

        def write() -> tuple[str, str, int]:
            with open(partial, "wb") as fh:
                return write_entries(entries, fh)

        try:
            digest, diff_id, size = await anyio.to_thread.run_sync(write)
            final = self.store.blob_path(digest)
            if final.exists():
                partial.unlink()
            else:
                os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return digest, diff_id, size

    async def _run(self, argv: list[str], state: StageState,
                   ins: df.Instruction) -> tuple[str, str, int]:
        """RUN: a throwaway container whose root is the stage's work tree (changed in place);
        what it changed there as a layer."""
        import anyio.lowlevel

        from ..image.commit import snapshot, snapshot_changes, write_layer
        from ..image.store import ImageConfig
        from ..paths import remove_tree as remove_dir

        if state.tree is None and state.files.root is None and not state.files.pending:
            raise ins.error("RUN in a stage without a filesystem (FROM scratch and nothing "
                            "copied): there is no shell to run")
        ready: dict[str, Any] = {}

        async def prepare() -> None:
            try:
                work = await self._writable(state)
                # the last RUN's view of the tree when nothing changed it since, else a new one
                before = state.files.snap
                ready["prior"] = (before if before is not None
                                  else await anyio.to_thread.run_sync(snapshot, work))
                ready["work"] = work
            except Exception as exc:  # raised below, as it is (not in an exception group)
                ready["error"] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(prepare)
            await anyio.lowlevel.checkpoint()  # prepare copies in worker threads from here
            # meanwhile the first step imports the engine's side (~15 ms, mostly overlapped)
            from ..engine.model import ProjectModel, ServiceConfig
            from ..engine.runner import ContainerContext, ProotRunner
            from ..engine.state import ProjectState

            try:
                self._step_proot(ProotRunner)  # and the proot's capabilities (its filter)
            except Exception as exc:  # not raised in the task group: an exception group
                ready["proot"] = exc
        for failed in ("error", "proot"):
            if failed in ready:
                raise ready[failed]
        work: Path = ready["work"]
        prior: dict[str, Any] = ready["prior"]
        state.files.snap = None  # the tree is about to change
        name = self._step_name
        root = self.paths.data / "build" / name
        env = {**state.args, **state.env()}
        env.setdefault("PATH", DEFAULT_PATH)
        cfg = {k: v for k, v in state.config.items() if not k.startswith("_")}
        base = state.tree
        # the step's image as the runner sees it: the state's config, the work tree as root
        image = ImageRecord(reference=name, digest=base.digest if base else "",
                            config_digest=base.config_digest if base else "",
                            config=ImageConfig.from_json(cfg), layers=tuple(state.infos),
                            size=0, created=None, rootfs=work)
        svc = ServiceConfig(name=name, image=name, command=tuple(argv),
                            entrypoint=(), environment=env,
                            working_dir=state.c.get("WorkingDir") or "/",
                            user=state.c.get("User") or None, hostname="buildkitsandbox",
                            auto_remove=True)
        model = ProjectModel(name=name, working_dir=str(self.opts.context),
                             services={name: svc}, state_dir=str(root), kind="container",
                             volumes_dir=str(root / "volumes"))
        pstate = ProjectState(root, self.paths.runtime)
        ctx = ContainerContext(project=model, service=svc, name=name, number=1, state=pstate)
        # one mapped id: every file the step writes stays the user's own, so that the work tree
        # can become a tree of the store (a layer keeps no owners anyway)
        binary, caps = self._step_proot(ProotRunner)
        runner = ProotRunner(paths=self.paths, pull_policy="never", image=image,
                             env={**self.env, "OPENCONTAINER_IDMAP": "single"}, caps=caps,
                             binary=binary, zygotes=self.zygotes)
        link = ctx.dir / "rootfs"
        try:
            try:
                self._link_step(link, work)
                remove_dir(root / "volumes", ignore_errors=True)  # fresh anonymous volumes
                await runner.create(ctx, fresh=False)
                proc = await runner.start(ctx, None)
                if self.zygotes is not None:  # the next step's, while this one runs
                    self.zygotes.fill()
            except OpenContainerError as exc:
                raise ins.error(f"cannot start the step's container: {exc}") from None
            try:
                async with anyio.create_task_group() as tg:
                    for stream in (proc.stdout, proc.stderr):
                        if stream is not None:
                            tg.start_soon(self._pump, stream)
                    code = await proc.wait(sweep=False)
            finally:
                with anyio.CancelScope(shield=True):
                    await proc.aclose()
            if code != 0:
                raise ins.error(f"process \"{shlex.join(argv)}\" did not complete "
                                f"successfully: exit code: {code}")
            after: dict[str, Any] = {}
            found = await anyio.to_thread.run_sync(
                lambda: snapshot_changes(work, prior, after=after))
            self.store.blobs.mkdir(parents=True, exist_ok=True)
            partial = self.store.blobs / f".build-{os.getpid()}-{time.monotonic_ns()}.partial"

            def write() -> tuple[str, str, int, int]:
                with open(partial, "wb") as fh:
                    return write_layer(found, fh)

            try:
                digest, diff_id, size, _ = await anyio.to_thread.run_sync(write)
                final = self.store.blob_path(digest)
                if final.exists():
                    partial.unlink()
                else:
                    os.replace(partial, final)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            if state.files.root == work:
                state.files.snap = after
            return digest, diff_id, size
        finally:
            # the container's folder (its root is the work tree: nothing for the runner to
            # remove) serves the next step, and goes with the work trees at the end
            if root not in self._trash:
                self._trash.append(root)

    async def _pump(self, stream: Any) -> None:
        async for chunk in stream:
            if self.output is not None:
                self.output(chunk)
            else:
                self.progress.output(chunk.decode("utf-8", "replace"))

    async def _commit(self, state: StageState, blob: tuple[str, str, int], created_by: str,
                      key: str) -> StageState:
        """A new image: the state's config + this layer (recorded without a tree: the files
        are the state's, handed on)."""
        digest, diff_id, size = blob
        cfg = json.loads(json.dumps(state.config))
        created = _now()
        cfg["created"] = created
        cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        cfg["rootfs"]["diff_ids"] = [*cfg["rootfs"].get("diff_ids", []), diff_id]
        cfg["history"] = [*(cfg.get("history") or []),
                          {"created": created, "created_by": created_by,
                           "comment": "buildkit.dockerfile.v0"}]
        layer = {"mediaType": OCI_LAYER, "digest": digest, "size": size}
        info = LayerInfo(digest, size, OCI_LAYER, diff_id)
        new = StageState(config=cfg, layers=[*state.layers, layer], infos=[*state.infos, info],
                         tree=state.tree, key=key, args=state.args, shell=state.shell,
                         files=state.files)
        base_size = state.tree.size if state.tree is not None else 0
        new.tree = self._record(new, base_size + size, intermediate=True)
        return new

    def _record(self, state: StageState, size: int, *, intermediate: bool,
                tags: Sequence[str] = ()) -> ImageRecord:
        """The state as an image: its config and manifest blobs stored, its record queued for
        the store's index (:meth:`_flush`: one write for the build's images); its tree is
        :meth:`_materialize`'s."""
        from ..image.store import ImageConfig, NewImage

        cfg = {k: v for k, v in state.config.items() if not k.startswith("_")}
        # sorted keys: the same state gives the same bytes, however it was made (a cache hit)
        config_bytes = json.dumps(cfg, separators=(",", ":"), sort_keys=True).encode()
        # not fsynced (a device flush each, tens of ms behind other writeback): like the
        # layers, made again by building again if a crash loses them
        config_digest = self.store.write_blob(config_bytes, durable=False)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                               "size": len(config_bytes)},
                    "layers": state.layers}
        manifest_digest = self.store.write_blob(
            json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode(),
            durable=False)
        self._new.append(NewImage(reference=None, digest=manifest_digest,
                                  config_digest=config_digest, layers=tuple(state.infos),
                                  size=size, media_type=OCI_MANIFEST, intermediate=intermediate,
                                  tags=tuple(tags)))
        return ImageRecord(reference=manifest_digest, digest=manifest_digest,
                           config_digest=config_digest, config=ImageConfig.from_json(cfg),
                           layers=tuple(state.infos), size=size, created=cfg.get("created"),
                           rootfs=self.store.rootfs_path(config_digest), media_type=OCI_MANIFEST,
                           intermediate=intermediate)

    def _flush(self) -> list[ImageRecord]:
        """Record the queued images in the store's index."""
        new, self._new = self._new, []
        # the index whole, its rename not synced: one device flush instead of two; the
        # build's layers and tree are not synced, so a crash loses its images anyway
        return self.store.add_images(new, durable=False) if new else []

    async def _materialize(self, state: StageState, *, intermediate: bool = False,
                           tags: Sequence[str] = ()) -> ImageRecord:
        """The state as an image of the store with its tree: the state's files become the
        tree (the work tree renamed; else a copy with the pending layers applied); the state's
        files are that tree afterwards."""
        from ..image.store import flock_async

        size = state.tree.size if state.tree is not None else 0
        rec = self._record(state, size, intermediate=intermediate, tags=tags)
        if not rec.rootfs.is_dir():
            hexpart = rec.config_digest.split(":", 1)[1]
            async with flock_async(self.store.lock_path(f"rootfs-{hexpart}")):
                if not rec.rootfs.is_dir():
                    work = await self._writable(state)
                    self.store.sweep_rootfs_tmp(rec.config_digest)
                    os.rename(work, rec.rootfs)
                    self._work.discard(work)
                    state.files.root, state.files.owned, state.files.snap = None, False, None
                    with contextlib.suppress(OSError):
                        (self.store.rootfs_dir / f".{hexpart}.size").write_text(str(size))
        if state.files.root != rec.rootfs:
            self._discard(state.files)
        state.files = Files(rec.rootfs)
        return self._flush()[-1]

    # -- the stage's files ---------------------------------------------------------------------
    async def _readable(self, state: StageState) -> Path | None:
        """The state's files, to read (None: none yet, FROM scratch)."""
        if state.files.pending:
            return await self._writable(state)
        return state.files.root

    async def _writable(self, state: StageState) -> Path:
        """The state's files in a work tree of the build's own (made on first use: a copy of
        the state's tree, or empty), every pending layer applied."""
        from ..image.unpack import Applier, apply_layer
        from ..runtime.rootfs import copy_rootfs

        files = state.files
        if not files.owned:
            self.store.rootfs_dir.mkdir(parents=True, exist_ok=True)
            work = self.store.rootfs_dir / f".tmp-build-{os.getpid()}-{time.monotonic_ns()}"
            self._work.add(work)
            if files.root is not None:
                await copy_rootfs(files.root, work)
            else:
                work.mkdir(mode=0o755)
            files.root, files.owned, files.snap = work, True, None
        root = files.root
        assert root is not None
        while files.pending:
            blob = files.pending[0]

            def apply(blob: str = blob) -> None:
                with open(self.store.blob_path(blob), "rb") as fh, Applier(root) as applier:
                    # a COPY's or a small RUN's layer: threads cost more than they save
                    small = os.fstat(fh.fileno()).st_size < SMALL_LAYER
                    apply_layer(applier, fh, name="the build step's layer", threaded=not small)

            files.snap = None
            await anyio.to_thread.run_sync(apply)
            files.pending.pop(0)
        return root

    def _link_step(self, link: Path, work: Path) -> None:
        """The steps' container folder with ``link`` (its root) to ``work``."""
        if self._step_link is not None:
            with contextlib.suppress(OSError):
                if os.readlink(link) == str(work):
                    return
                link.unlink()
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(work, target_is_directory=True)
        self._step_link = link

    def _step_proot(self, runner_class: Any) -> tuple[Path, Any]:
        """The RUN steps' proot binary and capabilities, found once a build (with the old
        proot's ENOSYS filter on this process under ``filter_here``: no wrapper needed)."""
        if self._proot is None:
            probe = runner_class(paths=self.paths, pull_policy="never", env=self.env)
            caps = probe.caps()
            if self.opts.filter_here and caps.needs_seccomp_fallback and self._filtered():
                caps = attrs.evolve(caps, statx=True)  # done: no wrapper
            self._proot = (probe.binary, caps)
        return self._proot

    def _filtered(self) -> bool:
        """The ENOSYS filter of an old proot on this process (``filter_here``): installed on
        the first call; False when it cannot be (each step then has its wrapper)."""
        if self._filter is None:
            from ..runtime.proot import UNTRANSLATED_FALLBACK_SYSCALLS
            from ..runtime.seccomp import SeccompError, install

            try:
                self._filter = install(UNTRANSLATED_FALLBACK_SYSCALLS) > 0
            except SeccompError:
                self._filter = False
        return self._filter

    def _discard(self, files: Files) -> None:
        """Forget ``files``' work tree (removed at the end of the build)."""
        if files.owned and files.root is not None:
            self._trash.append(files.root)
        files.root, files.owned, files.pending, files.snap = None, False, [], None

    def _cleanup(self) -> None:
        from ..image.store import remove_tree

        if self._step_link is not None:
            with contextlib.suppress(OSError):
                self._step_link.unlink()  # never the work tree: removing the container
            self._step_link = None
        for work in [*self._trash, *self._work]:
            if os.path.lexists(work):
                remove_tree(work)
        self._trash.clear()
        self._work.clear()


async def build(paths: Paths, env: Mapping[str, str], options: BuildOptions, *,
                progress: Progress | None = None,
                output: Callable[[bytes], None] | None = None,
                zygotes: Any = None) -> ImageRecord:
    builder = Builder(paths, env, options, progress, output)
    builder.zygotes = zygotes
    return await builder.build()


def write_iidfile(path: Path, rec: ImageRecord) -> None:
    from ..paths import atomic_write

    atomic_write(path, rec.config_digest)


def stream_writer(stream: IO[str]) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


__all__ = ["BuildOptions", "Builder", "Progress", "build", "stream_writer", "write_iidfile"]
