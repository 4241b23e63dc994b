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
# - jemalloc (Debian's libjemalloc2; the images carry it) in place of glibc's malloc, giving freed pages back within a
#   second (dirty pages after 1 s, by its background thread). glibc keeps what a load freed wherever a live block sits
#   above it: the orchestrator idled at 110-150 MB with 35-55 MB of it freed memory in glibc's main arena, under 100 MB
#   with this (bench, same CPU per saga). SAGAMESH_JEMALLOC names the library; set empty, or with no library found,
#   glibc's malloc is used, with the trim threshold fixed at 128 KiB (its default grows up to 32 MiB after large
#   frees and keeps that much in every arena). A MALLOC_CONF or GLIBC_TUNABLES already set wins. The bench says which
#   allocator each process runs with.
jemalloc=${SAGAMESH_JEMALLOC-}
if [ -z "${SAGAMESH_JEMALLOC+set}" ]; then
  for lib in /usr/local/lib/libjemalloc.so.2 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2; do
    if [ -f "$lib" ]; then jemalloc=$lib; break; fi
  done
fi
if [ -n "$jemalloc" ]; then
  export LD_PRELOAD="$jemalloc${LD_PRELOAD:+:$LD_PRELOAD}"
  export MALLOC_CONF="${MALLOC_CONF:-background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0}"
else
  export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.trim_threshold=131072}"
fi
preload="$(cd "$(dirname "$0")/../dist" && pwd)/otel-preload.mjs" || exit 1
exec "${NODE:-node}" --expose-gc --import "$preload" "$@"
