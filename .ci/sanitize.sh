#!/usr/bin/env bash
# CI sanitizer job: builds the CPU extension and the emulated CUDA module (the csrc/cuda kernels
# compiled for the host against csrc/cuda/emu, FASTLOSS_CUDA_EMULATOR=ON) with AddressSanitizer +
# UndefinedBehaviorSanitizer in a build directory of its own, then runs the fast part of the suite,
# the differential fuzzer and tests/test_cuda.py (every CUDA kernel and plan) against them. Any sanitizer report aborts the process that made it, which fails pytest (or the
# fuzzer's worker, reported with its seed): the job passes only with zero reports.
# Budget: <= 15 min on 2 cores (measured on a shared 2-core machine: build 7.7 CPU-minutes, tests
# 56-110 s wall; 8 min in all for a rebuild plus the tests). The emulated CUDA module adds about
# 2.5 CPU-minutes of build (7 translation units at -O1) and tests/test_cuda.py about 1.5 CPU-minutes
# (measured on the shared machine: 82 s user, 6 min wall under load). Needs GCC or Clang with the sanitizer
# runtimes, CMake (Ninja if present), and the test dependencies (numpy, torch, pytest, hypothesis, pybind11).
# Usage: .ci/sanitize.sh  (from any directory; uses the active Python)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="$root/build-sanitize"
py=$(command -v python3 || command -v python)

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)  # else CMake's default generator
cmake -S . -B "$build" "${gen[@]}" -DFASTLOSS_CUDA=OFF -DFASTLOSS_CUDA_EMULATOR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j"${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# The package from the source tree with the sanitized module in it, in a directory of its own (the
# source tree and any installed fastloss stay untouched).
pkg="$(mktemp -d)"
trap 'rm -rf "$pkg"' EXIT
cp -r python/fastloss "$pkg/fastloss"
rm -f "$pkg"/fastloss/_C*.so "$pkg"/fastloss/_cuda*.so
cp "$build"/csrc/cpu/_C*.so "$build"/csrc/cuda/emu/_cuda*.so "$pkg/fastloss/"

# CPython itself is not built with ASan, so the runtime must be loaded first (LD_PRELOAD), and
# libstdc++ with it: python does not link libstdc++, and ASan's __cxa_throw interceptor, resolved
# at its start, otherwise finds no real __cxa_throw (a CHECK failure at our first C++ exception).
cxx=$(grep -m1 '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" | cut -d= -f2)
asan_rt=$("$cxx" -print-file-name=libasan.so)
[ -f "$asan_rt" ] || asan_rt=$("$cxx" -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$asan_rt" ] || { echo "sanitize: no ASan runtime found for $cxx"; exit 1; }
cxx_rt=$("$cxx" -print-file-name=libstdc++.so)
export LD_PRELOAD="$asan_rt $cxx_rt"
# detect_leaks=0: CPython and its extension modules keep interned objects, arenas and caches
# alive until exit by design, which LeakSanitizer reports as thousands of leaks that are not ours
# (a leak of ours would be per call: the leak-loop test checks that with RSS instead).
# allocator_may_return_null=1: a huge request (C = 2^40 classes) must reach the code's bad_alloc
# handling, as without ASan, instead of being an ASan report.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}"
export FASTLOSS_REQUIRE_NATIVE=1
export OMP_NUM_THREADS=2
export FASTLOSS_FUZZ_CASES="${FASTLOSS_FUZZ_CASES:-1500}"  # the fuzzer's share of this job's budget

"$py" -c "import fastloss._C as c, sys; assert c.__file__.startswith('$pkg'), c.__file__; print('sanitized module:', c.__file__)"
"$py" -c "import fastloss._cuda as c; assert c.__file__.startswith('$pkg') and c.emulated, c.__file__; print('sanitized emulated CUDA module:', c.__file__)"

# The fast files: every kernel path (ISAs, dtypes, layouts, small rows, non-finite values, errors,
# out=/grad_output, misaligned arrays, Ctrl-C, threads) and the fuzzer (its default case count).
fast_tests=(
  tests/test_errors.py tests/test_nonfinite.py tests/test_shapes.py tests/test_small_rows.py
  tests/test_out_and_grad_output.py tests/test_dtypes.py tests/test_array_types.py
  tests/test_finite_differences.py tests/test_alignment.py tests/test_interrupt.py
  tests/test_threads_stress.py tests/test_strided_accuracy.py tests/fuzz
  tests/test_cuda.py
)
start=$(date +%s)
"$py" -m pytest "${fast_tests[@]}" -q -p no:cacheprovider -x
echo "sanitize: suite passed under ASan+UBSan in $(( $(date +%s) - start )) s"
