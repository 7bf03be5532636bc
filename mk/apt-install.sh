#!/usr/bin/env bash
# The one way the Makefile installs Debian packages: `mk/apt-install.sh PKG...`.
# As root it runs apt-get; otherwise through `sudo -n` (never a password
# prompt in the middle of a build). When it can do neither, it says exactly
# what to install and exits 1, so `make` stops with the fix on screen.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 PACKAGE..." >&2
	exit 2
fi
packages="$*"

if ! command -v apt-get >/dev/null 2>&1; then
	echo "mk/apt-install.sh: this needs the Debian/Ubuntu packages: $packages" >&2
	echo "  There is no apt-get here: install them with your system's package manager, then run make again." >&2
	exit 1
fi

if [ "$(id -u)" = 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	echo "mk/apt-install.sh: installing $packages needs root, and sudo -n is not allowed here." >&2
	echo "  Run this once yourself, then run make again:" >&2
	echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends $packages" >&2
	exit 1
fi

echo "apt-get install $packages" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086 # one word per package
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages
