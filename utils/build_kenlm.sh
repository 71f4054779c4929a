#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the PyPI kenlm source distribution (no other download).
# Usage: utils/build_kenlm.sh <pip> <install-dir>   -> <install-dir>/bin/{lmplz,build_binary}
# Idempotent: returns at once when both binaries exist and run.
set -euo pipefail
pip=$1
prefix=$(mkdir -p "$2" && cd "$2" && pwd)
version=0.3.0
if [[ -x $prefix/bin/lmplz && -x $prefix/bin/build_binary ]]; then
    echo "KenLM tools present in $prefix/bin"
    exit 0
fi
work=$prefix/src
rm -rf "$work" && mkdir -p "$work"
"$pip" download --quiet --no-deps --no-binary kenlm --dest "$work" "kenlm==$version"
tar -xzf "$work/kenlm-$version.tar.gz" -C "$work"
mkdir -p "$work/kenlm-$version/build"
(
    cd "$work/kenlm-$version/build"
    cmake .. -DCMAKE_BUILD_TYPE=Release > cmake.log 2>&1 || { tail -20 cmake.log >&2; exit 1; }
    make -j"$(nproc)" lmplz build_binary > make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
)
mkdir -p "$prefix/bin"
cp "$work/kenlm-$version/build/bin/lmplz" "$work/kenlm-$version/build/bin/build_binary" "$prefix/bin/"
rm -rf "$work"
echo "KenLM tools built in $prefix/bin"
