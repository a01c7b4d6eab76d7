"""Layer unpacking with crafted tars: whiteouts, links, modes, escapes, compressions."""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import threading
from pathlib import Path

import attrs
import pytest

from opencontainer.errors import DigestMismatch, UnpackError
from opencontainer.image.unpack import Applier, LayerSource, apply_layer, unpack_layers

from .image_helpers import Entry, compress, d, f, hard, make_tar, sha, sym, tree

WORKERS = [0]


@pytest.fixture(autouse=True, params=[0, 3], ids=["inline", "threads"])
def workers(request: pytest.FixtureRequest) -> int:
    WORKERS[0] = request.param
    return int(request.param)


def apply(root: Path, *layers: list[Entry], compression: str = "none") -> Applier:
    with Applier(root, workers=WORKERS[0]) as ap:
        for entries in layers:
            raw = make_tar(entries)
            apply_layer(ap, io.BytesIO(compress(raw, compression)), diff_id=sha(raw))
    return ap


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_basic_tree(tmp_path: Path, compression: str) -> None:
    apply(
        tmp_path,
        [
            d("etc"),
            f("etc/hostname", "box\n"),
            f("bin/tool", b"\x7fELF", 0o755),
            sym("bin/sh", "tool"),
            hard("bin/tool2", "bin/tool"),
            d("empty", 0o700),
        ],
        compression=compression,
    )
    t = tree(tmp_path)
    assert t["etc/hostname"] == ("file", "0o644", b"box\n", 1)
    assert t["bin/tool"] == ("file", "0o755", b"\x7fELF", 2)
    assert t["bin/tool2"] == ("file", "0o755", b"\x7fELF", 2)
    assert t["bin/sh"] == ("symlink", "tool")
    assert t["empty"] == ("dir", "0o700")
    assert t["bin"][0] == "dir"  # implicit parent


def test_modes_and_mtimes(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [
            d("locked", 0o000),
            f("locked/secret", "x", 0o000),
            f("suid", "x", 0o4755),
            f("ro", "x", 0o444),
        ],
    )
    assert oct((tmp_path / "locked").stat().st_mode & 0o7777) == "0o700"
    assert oct((tmp_path / "locked/secret").stat().st_mode & 0o7777) == "0o400"
    assert oct((tmp_path / "suid").stat().st_mode & 0o7777) == "0o4755"
    assert oct((tmp_path / "ro").stat().st_mode & 0o7777) == "0o444"
    assert int((tmp_path / "ro").stat().st_mtime) == 1_600_000_000
    assert int((tmp_path / "locked").stat().st_mtime) == 1_600_000_000


def test_long_names_gnu_and_pax(tmp_path: Path) -> None:
    long = "a" * 120 + "/" + "b" * 150
    with Applier(tmp_path) as ap:
        for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
            raw = make_tar([f(long, "long"), sym("l" * 200, long)], fmt=fmt)
            apply_layer(ap, io.BytesIO(raw))
    assert (tmp_path / long).read_text() == "long"
    assert os.readlink(tmp_path / ("l" * 200)) == long


def test_whiteouts(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [f("a/keep", "1"), f("a/gone", "2"), f("top", "t"), d("dir"), f("dir/x", "x")],
        [f("a/.wh.gone"), f(".wh.top"), f(".wh.dir"), f(".wh.never-existed")],
    )
    t = tree(tmp_path)
    assert set(t) == {"a", "a/keep"}


def test_opaque_applies_to_lower_layers_only(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [f("d/old1", "1"), f("d/sub/old2", "2"), f("other", "o")],
        [f("d/new-before", "n"), f("d/.wh..wh..opq"), f("d/new-after", "m")],
    )
    assert set(tree(tmp_path)) == {"d", "d/new-before", "d/new-after", "other"}


def test_whiteout_never_deletes_same_layer(tmp_path: Path) -> None:
    apply(tmp_path, [f("x", "lower")], [f("x", "upper"), f(".wh.x"), f("y", "y"), f(".wh.y")])
    assert (tmp_path / "x").read_text() == "upper"
    assert (tmp_path / "y").read_text() == "y"


def test_whiteout_of_dir_keeps_same_layer_children(tmp_path: Path) -> None:
    apply(tmp_path, [f("d/lower", "1")], [f("d/upper", "2"), f(".wh.d")])
    assert set(tree(tmp_path)) == {"d", "d/upper"}


def test_replacement_rules(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [d("was-dir"), f("was-dir/x", "x"), f("was-file", "f"), sym("was-link", "/etc")],
        [f("was-dir", "now a file"), d("was-file"), f("was-link", "now a file")],
    )
    t = tree(tmp_path)
    assert t["was-dir"][0] == "file"
    assert t["was-file"][0] == "dir"
    assert t["was-link"][:1] == ("file",)
    assert not (tmp_path / "etc").exists()


def test_usrmerge_symlinked_parent_resolves_inside(tmp_path: Path) -> None:
    apply(
        tmp_path,
        [d("usr/lib"), sym("lib", "usr/lib"), sym("abs", "/usr")],
        [f("lib/libc.so", "c"), f("abs/share/doc", "doc")],
    )
    assert (tmp_path / "usr/lib/libc.so").read_text() == "c"
    assert (tmp_path / "usr/share/doc").read_text() == "doc"
    assert os.readlink(tmp_path / "lib") == "usr/lib"


def test_fifo_skipped(tmp_path: Path) -> None:
    apply(tmp_path, [Entry("dev/fifo", "fifo"), f("ok", "1")])
    assert not (tmp_path / "dev/fifo").exists()
    assert (tmp_path / "ok").exists()


# -- hostile layers ---------------------------------------------------------------------------
@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    return root, outside


def _assert_outside_untouched(outside: Path) -> None:
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "entries",
    [
        [f("../outside/evil", "x")],
        [f("a/../../outside/evil", "x")],
        [sym("link", "../outside"), f("link/evil", "x")],
        [sym("link", "../../../../../../outside"), f("link/evil", "x")],
        [d("a"), sym("a/up", "../.."), f("a/up/outside/evil", "x")],
    ],
    ids=["dotdot", "nested-dotdot", "symlink-parent", "deep-symlink", "relative-up"],
)
def test_escapes_are_refused(jail: tuple[Path, Path], entries: list[Entry]) -> None:
    root, outside = jail
    with pytest.raises(UnpackError):
        apply(root, entries)
    _assert_outside_untouched(outside)


VICTIM = "host file, not the image's\n"


@pytest.mark.parametrize("links", ["work", "refused"])
@pytest.mark.parametrize(
    "entries",
    [
        # every target names the real host file <tmp>/outside/target (root is <tmp>/root)
        [hard("evil", "../outside/target")],
        [d("a"), hard("a/evil", "a/../../outside/target")],
        [sym("link", ".."), hard("evil", "link/outside/target")],
        [d("a"), sym("a/up", "../.."), hard("evil", "a/up/outside/target")],
        [sym("link", "{outside}"), hard("evil", "link/target")],
        [hard("evil", "{outside}/target")],
    ],
    ids=["dotdot", "nested-dotdot", "through-symlink", "through-relative-up",
         "through-absolute-symlink", "absolute"],
)
def test_hardlink_escapes_are_refused(jail: tuple[Path, Path], entries: list[Entry],
                                      links: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hardlink to a file outside the root is refused (or stays inside, for absolute
    names), also when link() is refused and hardlinks become copies: the host file keeps
    its content and its only link, and nothing in the root is it or a copy of it."""
    root, outside = jail
    victim = outside / "target"
    victim.write_text(VICTIM)
    victim.chmod(0o640)
    before = victim.stat()
    if links == "refused":
        _refuse_links(monkeypatch)
    entries = [attrs.evolve(e, name=e.name.format(outside=outside),
                            target=e.target.format(outside=outside)) for e in entries]
    refused = False
    try:
        apply(root, entries)
    except UnpackError:
        refused = True
    # the host file first: this is the damage an escape would do
    after = victim.stat()
    assert victim.read_text() == VICTIM
    assert (after.st_ino, after.st_nlink, after.st_mode, after.st_mtime_ns) == \
        (before.st_ino, 1, before.st_mode, before.st_mtime_ns)
    assert [p.name for p in outside.iterdir()] == ["target"]
    for top, dirs, files in os.walk(root):  # never follows the layer's symlinks
        for name in dirs + files:
            p = Path(top, name)
            st = p.lstat()
            assert (st.st_dev, st.st_ino) != (after.st_dev, after.st_ino), p
            if stat.S_ISREG(st.st_mode):
                assert p.read_text() != VICTIM, p
    assert refused


def test_whiteout_of_dot_and_dotdot_is_ignored(jail: tuple[Path, Path]) -> None:
    root, outside = jail
    (outside / "keep").write_text("k")
    apply(root, [d("x"), f("x/a", "a")], [f(".wh..."), f("x/.wh.."), f("x/.wh...")])
    assert (outside / "keep").exists()
    assert (root / "x/a").exists()


def test_absolute_paths_and_symlinks_stay_inside(jail: tuple[Path, Path]) -> None:
    root, outside = jail
    apply(root, [f(f"/{outside}/abs", "x"), sym("escape", str(outside)), f("escape/evil", "y")])
    _assert_outside_untouched(outside)
    assert (root / str(outside).lstrip("/") / "abs").read_text() == "x"
    assert (root / str(outside).lstrip("/") / "evil").read_text() == "y"


def test_symlink_then_file_replaces_link_not_target(jail: tuple[Path, Path]) -> None:
    root, outside = jail
    victim = outside / "victim"
    apply(root, [sym("x", str(victim)), sym("y", "../outside/victim")], [f("x", "a"), f("y", "b")])
    _assert_outside_untouched(outside)
    assert (root / "y").read_text() == "b"


def test_hardlink_to_missing_target(tmp_path: Path) -> None:
    with pytest.raises(UnpackError, match="does not exist"):
        apply(tmp_path, [hard("a", "nope")])


# -- filesystems that refuse hard links (Android 6+ app data, some FUSE / SD cards) -----------
def _refuse_links(monkeypatch: pytest.MonkeyPatch, err: int = errno.EACCES) -> list[str]:
    """Make ``os.link`` fail with ``err``, as SELinux does on Android; returns the calls."""
    calls: list[str] = []

    def refuse(src: object, dst: object, *args: object, **kwargs: object) -> None:
        calls.append(str(dst))
        raise OSError(err, os.strerror(err), str(src), None, str(dst))

    monkeypatch.setattr(os, "link", refuse)
    return calls


@pytest.mark.parametrize("err", [errno.EACCES, errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV])
def test_hardlinks_become_copies_where_links_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    calls = _refuse_links(monkeypatch, err)
    apply(
        tmp_path,
        [
            f("usr/bin/perl5.36.0", b"\x7fELF perl", 0o755),
            hard("usr/bin/perl", "usr/bin/perl5.36.0"),
            f("etc/secret", "s", 0o600),
            hard("etc/secret-too", "etc/secret"),
            sym("usr/bin/sh", "dash"),
            hard("usr/bin/sh-too", "usr/bin/sh"),  # a hardlink to a symlink
        ],
        [hard("usr/bin/perl-again", "usr/bin/perl")],  # a later layer, the same applier
    )
    t = tree(tmp_path)
    for name in ("usr/bin/perl5.36.0", "usr/bin/perl", "usr/bin/perl-again"):
        assert t[name] == ("file", "0o755", b"\x7fELF perl", 1), name
    assert t["etc/secret"] == t["etc/secret-too"] == ("file", "0o600", b"s", 1)
    assert t["usr/bin/sh-too"] == ("symlink", "dash")
    perl, perl_link = (tmp_path / "usr/bin/perl5.36.0").stat(), (tmp_path / "usr/bin/perl").stat()
    assert perl.st_ino != perl_link.st_ino
    assert perl.st_mtime_ns == perl_link.st_mtime_ns
    assert len(calls) == 1  # refused once: the rest went straight to copying


def test_too_many_links_copies_that_entry_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMLINK is about one inode: the next hardlink still tries link()."""
    calls = _refuse_links(monkeypatch, errno.EMLINK)
    apply(tmp_path, [f("a", "a"), hard("a2", "a"), f("b", "b"), hard("b2", "b")])
    assert len(calls) == 2
    assert (tmp_path / "a2").read_text() == "a" and (tmp_path / "b2").read_text() == "b"


def test_other_link_errors_still_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_links(monkeypatch, errno.ENOSPC)
    with pytest.raises(UnpackError, match="No space left"):
        apply(tmp_path, [f("a", "a"), hard("a2", "a")])


def test_large_hardlinked_file_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = os.urandom(5 << 20)  # above SMALL_FILE: written by the streaming path
    _refuse_links(monkeypatch)
    apply(tmp_path, [f("big", big, 0o640), hard("big-link", "big")])
    assert (tmp_path / "big-link").read_bytes() == big
    assert oct((tmp_path / "big-link").stat().st_mode & 0o777) == "0o640"


def test_diff_id_mismatch(tmp_path: Path) -> None:
    raw = make_tar([f("a", "1")])
    with pytest.raises(DigestMismatch), Applier(tmp_path) as ap:
        apply_layer(ap, io.BytesIO(raw), diff_id=sha(b"other"))


def test_garbage_is_unpack_error(tmp_path: Path) -> None:
    with pytest.raises(UnpackError), Applier(tmp_path) as ap:
        apply_layer(ap, io.BytesIO(b"\x1f\x8b" + b"garbage" * 100))


# -- the growing-file reader ------------------------------------------------------------------
def test_layer_source_streams_while_writing(tmp_path: Path) -> None:
    raw = make_tar([f(f"file{i}", os.urandom(5000)) for i in range(50)])
    blob = compress(raw, "gzip")
    partial, final = tmp_path / "b.partial", tmp_path / "b"
    src = LayerSource(sha(blob), partial, final)

    def writer() -> None:
        with open(partial, "wb") as out:
            src.started(0)
            for i in range(0, len(blob), 1000):
                out.write(blob[i : i + 1000])
                out.flush()
                src.advance(out.tell())
        src.finish()

    dest = tmp_path / "root"
    dest.mkdir()
    t = threading.Thread(target=writer)
    t.start()
    size = unpack_layers(dest, [src], [sha(raw)])
    t.join()
    assert size == len(raw)
    assert len(list(dest.iterdir())) == 50
    assert final.exists() and not partial.exists()


def test_layer_source_failure_propagates(tmp_path: Path) -> None:
    src = LayerSource("sha256:" + "0" * 64, tmp_path / "p", tmp_path / "f")
    src.fail(DigestMismatch("bad"))
    with pytest.raises(DigestMismatch):
        unpack_layers(tmp_path, [src], [None])
