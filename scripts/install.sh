#!/usr/bin/env bash
# scripts/install.sh [PREFIX]: builds the release binary (scripts/release.sh: no Swift needed to run
# it) and installs it as PREFIX/bin/localnlb. PREFIX is /usr/local as root, ~/.local otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: scripts/install.sh [PREFIX]   (default: /usr/local as root, else ~/.local)" >&2
  exit 64
fi
if [ $# -eq 1 ]; then
  prefix=$1
elif [ "$(id -u)" -eq 0 ]; then
  prefix=/usr/local
else
  prefix=$HOME/.local
fi
built=$(scripts/release.sh | tail -n 1)
if ! install -d "$prefix/bin" 2> /dev/null || [ ! -w "$prefix/bin" ]; then
  echo "install: cannot write $prefix/bin: run as root, or give a PREFIX you own (scripts/install.sh ~/.local)" >&2
  exit 1
fi
install -m 0755 "$built" "$prefix/bin/localnlb"
echo "installed $prefix/bin/localnlb: $("$prefix/bin/localnlb" version)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
