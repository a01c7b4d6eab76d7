#!/usr/bin/env bash
# Run the whole OpenContainer test suite on a fresh Debian/Ubuntu machine:
#   bash scripts/test.sh [pytest args...]
#
# 1. installs the system packages the tests use (proot, docker-registry, busybox-static,
#    mmdebstrap, skopeo, umoci, clients, build deps for proot 5.4.0) with apt-get,
# 2. creates a virtualenv and installs the package with its test extras,
# 3. builds the test fixtures that need root (proot 5.4.0, the mmdebstrap image) into the
#    test cache,
# 4. runs pytest — as an unprivileged user (created if needed) when started as root, because
#    that is who our users are.
# Exit status is pytest's; "no tests collected" (5) counts as a failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared_src=${OPENCONTAINER_SHARED:-$repo/../shared}
test_user=${OPENCONTAINER_TEST_USER:-ocuser}
cache=${OPENCONTAINER_TEST_CACHE:-/var/tmp/opencontainer-test-cache}
export OPENCONTAINER_TEST_CACHE=$cache

log() { printf '\n== %s\n' "$*" >&2; }

as_root=0
[ "$(id -u)" = 0 ] && as_root=1
SUDO=()
if [ $as_root = 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

# ---------------------------------------------------------------------------------------------
pkgs=(proot docker-registry busybox-static mmdebstrap skopeo umoci redis-tools
      postgresql-client apache2-utils libtalloc-dev uthash-dev build-essential dpkg-dev
      python3 python3-venv curl openssl ca-certificates util-linux procps tini uidmap slirp4netns)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing system packages: ${missing[*]}"
  if [ $as_root = 0 ] && [ ${#SUDO[@]} = 0 ]; then
    echo "missing packages (${missing[*]}) and no root/sudo to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Private networks (slirp4netns) open /dev/net/tun. Distributions make it 0666 (udev's
# rule); some container/VM images leave it 0600 root, and every project then falls back to
# the shared host loopback. As root, give it the usual mode.
if [ $as_root = 1 ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  chmod 0666 /dev/net/tun || true
fi

# ---------------------------------------------------------------------------------------------
# Python: 3.11+ that the unprivileged test user can execute too (not a pyenv under /root).
pick_python() {
  for c in "${PYTHON:-}" /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 /usr/bin/python3 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  echo "no Python >= 3.11 with venv found (set PYTHON=...)" >&2
  return 1
}
py=$(pick_python)

if [ $as_root = 1 ]; then
  # Stage a copy that the unprivileged user owns: the clone may sit under /root.
  id "$test_user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$test_user"
  stage=${OPENCONTAINER_TEST_STAGE:-/var/tmp/opencontainer-ci}
  log "staging $repo in $stage for user $test_user"
  mkdir -p "$stage"
  rm -rf "$stage/main" "$stage/shared"
  mkdir -p "$stage/main"
  (cd "$repo" && tar --exclude=./.venv --exclude=./.git --exclude='*.egg-info' \
      --exclude='__pycache__' --exclude=./.containers -cf - .) | tar -C "$stage/main" -xf -
  if [ -d "$shared_src" ]; then cp -a "$shared_src" "$stage/shared"; fi
  chown -R "$test_user:" "$stage"
  work=$stage/main
  venv=$stage/venv
  run_as=(runuser -u "$test_user" -- env HOME="$(getent passwd "$test_user" | cut -d: -f6)")
else
  work=$repo
  venv=${OPENCONTAINER_TEST_VENV:-$repo/.venv-test}
  run_as=(env)
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating virtualenv $venv with $py"
  rm -rf "$venv"
  "${run_as[@]}" "$py" -m venv "$venv"
fi
log "installing opencontainer[test] into $venv"
# editable_mode=compat: a plain path in a .pth file. setuptools' default editable finder is
# imported by site.py at every Python start (~12 ms here: pathlib, importlib.util, fnmatch),
# which every CLI call, supervisor and benchmark side would pay and a user's install does not
(cd "$work" && "${run_as[@]}" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -e ".[test]" --config-settings editable_mode=compat 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored' || true)
"${run_as[@]}" "$venv/bin/python" -c 'import opencontainer, pytest' || { echo "install failed" >&2; exit 1; }
# byte-compile once: the tests start the CLI hundreds of times, and with
# PYTHONDONTWRITEBYTECODE set each start would compile the package again
"${run_as[@]}" "$venv/bin/python" -m compileall -q "$work/opencontainer" "$work/tests" >/dev/null || true

# ---------------------------------------------------------------------------------------------
log "preparing test fixtures (cache: $cache)"
mkdir -p "$cache"
if [ $as_root = 1 ]; then
  (cd "$work" && "$venv/bin/python" -m tests.fixtures.prepare --chown "$test_user")
else
  (cd "$work" && "$venv/bin/python" -m tests.fixtures.prepare) || \
    echo "(fixture preparation incomplete; tests needing root-built fixtures will say so)" >&2
fi

if [ $as_root = 1 ]; then
  # what earlier runs' containers gave to the test user's subordinate ids, which that user
  # cannot delete: pytest's abandoned tmp dirs (disk space)
  rm -rf /tmp/pytest-of-"$test_user"/garbage-* 2>/dev/null || true
fi

# ---------------------------------------------------------------------------------------------
log "running pytest as $(if [ $as_root = 1 ]; then echo "$test_user"; else id -un; fi)"
set +e
(cd "$work" && "${run_as[@]}" \
    CI="${CI:-}" \
    OPENCONTAINER_TEST_CACHE="$cache" \
    OPENCONTAINER_SHARED="$(cd "$work/.." && pwd)/shared" \
    OPENCONTAINER_TEST_REQUIRE_UNPRIVILEGED="$as_root" \
    OPENCONTAINER_RUNTIME="${OPENCONTAINER_RUNTIME:-}" \
    OPENCONTAINER_IDMAP="${OPENCONTAINER_IDMAP:-}" \
    PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@")
rc=$?
set -e
if [ $rc = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $rc
