#!/usr/bin/env bash
# Install OpenContainer for the current user (no root needed once proot is there):
#   bash scripts/install.sh
#
# - installs proot with apt-get when it is missing and sudo/root is available, and uidmap and
#   slirp4netns (the native backend's subordinate ids, private networks) when they are missing
#   (Termux: run `pkg install proot python` first; elsewhere point OPENCONTAINER_PROOT at a proot),
# - creates a virtualenv in ${OPENCONTAINER_VENV:-~/.local/share/opencontainer/venv},
# - installs this checkout into it and links ~/.local/bin/opencontainer.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${OPENCONTAINER_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/opencontainer/venv}
bindir=${OPENCONTAINER_BIN_DIR:-$HOME/.local/bin}

# what makes containers fast and private where the kernel allows it: the native backend's
# subordinate ids (uidmap) and a private network per project (slirp4netns); optional
optional=(uidmap slirp4netns)
if command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  want=()
  if ! command -v proot >/dev/null 2>&1 && [ -z "${OPENCONTAINER_PROOT:-}" ]; then
    want+=(proot python3-venv)
  fi
  for p in "${optional[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
  done
  if [ ${#want[@]} -gt 0 ]; then
    if ! command -v proot >/dev/null 2>&1 && [ -z "${OPENCONTAINER_PROOT:-}" ]; then
      echo "installing ${want[*]} with apt-get" >&2  # proot is needed: as before, may prompt
      "${sudo_cmd[@]}" apt-get update -qq
      "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}"
    else
      # only the optional ones: never prompt, never fail for them
      [ "$(id -u)" = 0 ] || sudo_cmd=(sudo -n)
      if { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; } &&
         "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" \
           >/dev/null 2>&1; then
        echo "installed ${want[*]}" >&2
      else
        echo "note: ${want[*]} not installed (needs root): containers run without private" \
             "networks or subordinate ids; opencontainer doctor says what that changes" >&2
      fi
    fi
  fi
elif ! command -v proot >/dev/null 2>&1 && [ -z "${OPENCONTAINER_PROOT:-}" ]; then
  if command -v pkg >/dev/null 2>&1; then
    pkg install -y proot
  else
    echo "proot is not installed and there is no apt-get/pkg: install proot, or set OPENCONTAINER_PROOT" >&2
    exit 1
  fi
fi

py=""
for c in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
  [ -n "$c" ] || continue
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$c; break
  fi
done
[ -n "$py" ] || { echo "OpenContainer needs Python >= 3.11 with venv (apt install python3-venv)" >&2; exit 1; }

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$repo"
mkdir -p "$bindir"
ln -sf "$venv/bin/opencontainer" "$bindir/opencontainer"
"$bindir/opencontainer" --version
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) echo "add $bindir to your PATH (e.g. export PATH=\"$bindir:\$PATH\")" >&2 ;;
esac
