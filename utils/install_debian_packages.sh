#!/usr/bin/env bash
# Install the Debian packages listed in utils/debian_packages.txt that are missing.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
# Some voices (mbrola, festvox-rablpc16k, libttspico-utils) are in Debian's contrib / non-free
# components: when apt cannot see them, the script adds those components for the mirrors that the
# machine already uses (a new file /etc/apt/sources.list.d/dinosr-contrib-non-free.sources).
# Usage: utils/install_debian_packages.sh [package-list-file]
set -euo pipefail
list=${1:-$(dirname "$0")/debian_packages.txt}
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$list")
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
    echo "       (mbrola*, festvox-rablpc16k and libttspico-utils need apt's contrib and non-free components)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

contrib_file=/etc/apt/sources.list.d/dinosr-contrib-non-free.sources
# deb822 stanzas of the Debian mirrors in use (debian.sources), with Components set to contrib non-free.
contrib_stanzas() {
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Components:[^\n]*main/ && !/(^|\n)Enabled: *no/ {
             gsub(/(^|\n)Components:[^\n]*/, "\nComponents: contrib non-free"); sub(/^\n/, ""); print }' "$@"
}
# One-line sources.list entries ("deb URI SUITE main ...") turned into the same stanzas.
contrib_stanzas_from_lines() {
    awk '$1 == "deb" && $0 ~ / main( |$)/ && $2 !~ /^\[/ {
             printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: contrib non-free\n\n", $2, $3 }' "$@"
}
sources_have() {   # sources_have COMPONENT: some enabled Debian entry lists COMPONENT
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    grep -hsE "^(deb |Components:).*[[:space:]]$1([[:space:]]|$)" "${files[@]}" >/dev/null
}
enable_contrib_non_free() {
    if sources_have contrib && sources_have non-free; then
        return 0
    fi
    if ! grep -qs '^ID=debian' /etc/os-release; then
        echo "WARNING: not Debian: enable the components that carry mbrola, festvox-rablpc16k and" \
             "libttspico-utils yourself (Ubuntu: multiverse)" >&2
        return 0
    fi
    local stanzas
    stanzas=$(contrib_stanzas /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [[ -n $stanzas ]] || stanzas=$(contrib_stanzas_from_lines /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    if [[ -z $stanzas ]]; then
        echo "WARNING: found no Debian 'main' entry in /etc/apt/sources.list*; add contrib and non-free yourself" >&2
        return 0
    fi
    echo "Enabling apt's contrib and non-free components in ${contrib_file}"
    printf '%s\n' "$stanzas" | "${sudo_cmd[@]}" tee "${contrib_file}.tmp" >/dev/null
    "${sudo_cmd[@]}" mv "${contrib_file}.tmp" "${contrib_file}"
}
enable_contrib_non_free
# Another apt/dpkg (unattended-upgrades, a second `make install`) may hold the package lock: wait for
# it, bounded by DPKG_LOCK_TIMEOUT seconds (default 600), saying so, instead of failing at once.
lock_timeout=${DPKG_LOCK_TIMEOUT:-600}
poll_seconds=${DPKG_LOCK_POLL_SECONDS:-5}
apt_get() {  # apt_get ARGS... : "${sudo_cmd[@]}" apt-get ARGS, retried while the lock is held
    local deadline=$((SECONDS + lock_timeout)) errors
    errors=$(mktemp)
    while true; do
        if "${sudo_cmd[@]}" apt-get "$@" 2> "${errors}"; then
            cat "${errors}" >&2
            rm -f "${errors}"
            return 0
        fi
        if ! grep -qiE "could not get lock|unable to acquire the dpkg frontend lock|unable to lock" "${errors}"; then
            cat "${errors}" >&2
            rm -f "${errors}"
            return 1
        fi
        if [[ ${SECONDS} -ge ${deadline} ]]; then
            cat "${errors}" >&2
            rm -f "${errors}"
            echo "ERROR: another apt/dpkg process still holds the package lock after ${lock_timeout} s;" >&2
            echo "       wait for it to finish (ps aux | grep -E 'apt|dpkg') and run again, or set DPKG_LOCK_TIMEOUT" >&2
            return 1
        fi
        echo "apt-get $1: another apt/dpkg process holds the package lock; waiting" \
             "($((deadline - SECONDS)) s left, DPKG_LOCK_TIMEOUT=${lock_timeout})" >&2
        sleep "${poll_seconds}"
    done
}
apt_get update -q
apt_get install -y -q --no-install-recommends "${missing[@]}"
