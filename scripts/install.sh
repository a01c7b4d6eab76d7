#!/usr/bin/env bash
# Install OpenContainer for the current user (no root needed once proot is there):
#   bash scripts/install.sh
#
# - installs proot with apt-get when it is missing and sudo/root is available
#   (Termux: run `pkg install proot python` first; elsewhere point OPENCONTAINER_PROOT at a proot),
# - creates a virtualenv in ${OPENCONTAINER_VENV:-~/.local/share/opencontainer/venv},
# - installs this checkout into it and links ~/.local/bin/opencontainer.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${OPENCONTAINER_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/opencontainer/venv}
bindir=${OPENCONTAINER_BIN_DIR:-$HOME/.local/bin}

if ! command -v proot >/dev/null 2>&1 && [ -z "${OPENCONTAINER_PROOT:-}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    echo "installing proot with apt-get" >&2
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq proot python3-venv
  elif command -v pkg >/dev/null 2>&1; then
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
