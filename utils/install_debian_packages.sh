#!/usr/bin/env bash
# Install the Debian packages listed in utils/debian_packages.txt that are missing.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
# Usage: utils/install_debian_packages.sh [package-list-file]
set -euo pipefail
list=${1:-$(dirname "$0")/debian_packages.txt}
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "Debian packages: all ${#wanted[@]} present."
    exit 0
fi
echo "Debian packages missing: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo_cmd=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo)
else
    echo "ERROR: need root or passwordless sudo to install: ${missing[*]}" >&2
    echo "       run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
