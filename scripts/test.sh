#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite: unit and integration tests
# on the normal build, then the unit tests again under AddressSanitizer + UBSan.
#   scripts/test.sh [--unit-only]
set -euo pipefail
cd "$(dirname "$0")/.."

unit_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1
jobs=$(nproc)

scripts/install-deps.sh

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== unit tests"
ctest --test-dir build -L unit --output-on-failure -j "$jobs"

if [ "$unit_only" -eq 0 ]; then
  echo "== integration tests (real Ceph, real daemons)"
  ctest --test-dir build -L integration --output-on-failure -j 2
fi

echo "== unit tests under ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDPUSTOR_SANITIZE=ON \
  -DDPUSTOR_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs" --target unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"
