#!/bin/sh
# How every sagamesh workload's node starts: the image's CMD (Dockerfile) and scripts/lib/platform.ts (make dev, the
# tests, the bench) both run `sh node-service.sh <workspace>/dist/main.mjs [args]`, so these settings live here only.
# The entry and the tracing preload are the bundles scripts/lib/build.ts writes (plain JavaScript: Node's type
# stripper, ~17 MB of RSS, is never loaded); the preload sits in ../dist beside this script's src/.
# NODE is the node binary (default: the one on PATH). `exec`: node takes this shell's pid, so signals (tini's, the
# supervisor's SIGKILL) reach it and its exit status is the process's.
#
# Memory (issue 12: each service idles under 100 MB RSS; README "Benchmark" has the figures):
# - --expose-gc: runMain's releaseMemoryWhenIdle (libs/runtime/src/idle-memory.ts) runs the memory-reducing GC that
#   V8's own memory reducer never runs in an idle Node process; without it the heap's high-water mark stays resident.
# - glibc malloc trim threshold 128 KiB (fixed): glibc's default grows it (up to 32 MiB) after large frees and then
#   keeps up to that much freed memory in every arena; fixed, freed memory above 128 KiB at an arena's top goes back.
#   A GLIBC_TUNABLES already set wins. Other C libraries (musl) ignore it.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.trim_threshold=131072}"
preload="$(cd "$(dirname "$0")/../dist" && pwd)/otel-preload.mjs" || exit 1
exec "${NODE:-node}" --expose-gc --import "$preload" "$@"
