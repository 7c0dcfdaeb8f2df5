#!/usr/bin/env bash
# scripts/release.sh: a release binary that runs where Swift is not installed. It is built with
# --static-swift-stdlib (the Swift runtime and Foundation linked in), so it needs only what every
# Linux has: glibc, libstdc++, libgcc_s and OpenSSL 3 (libssl3, for TLS listeners). Written to .build/dist/localnlb-VERSION-linux-ARCH with
# a .sha256 beside it; the last line printed is its path. The build has a scratch directory of its own
# (.build/static), so the ordinary release build (benchmarks, alloc-check) is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift > /dev/null || {
  echo "release: swift is not on PATH: install Swift 6 (https://www.swift.org/install/linux/) first" >&2
  exit 1
}
scratch=.build/static
# Static Foundation's link names mktemp once per object that uses it: said once here, not 40 times.
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product localnlb \
  2> >(grep -v "the use of .mktemp' is dangerous" >&2) >&2
built="$scratch/release/localnlb"
version=$("$built" version | awk '{ print $2 }')
dist=.build/dist
mkdir -p "$dist"
out="$dist/localnlb-$version-linux-$(uname -m)"
cp "$built" "$out"
if command -v strip > /dev/null; then strip "$out"; fi
(cd "$dist" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
if ldd "$out" | grep -q swift; then
  echo "release: $out still links a Swift library:" >&2
  ldd "$out" >&2
  exit 1
fi
echo "release: $out ($(du -h "$out" | cut -f1), needs only $(ldd "$out" | awk '/=>/ { print $1 }' | sort | tr '\n' ' '))" >&2
echo "$out"
