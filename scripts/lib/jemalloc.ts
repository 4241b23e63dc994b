/**
 * jemalloc, which the workloads' launcher (libs/runtime/src/node-service.sh) preloads when it finds it: Debian's
 * libjemalloc2, installed first when it is missing (as root: apt-get; otherwise the platform runs on glibc's malloc
 * and this says what to run). The images carry it (Dockerfile).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where Debian's libjemalloc2 puts the library on this machine (the launcher looks there). */
export const DEBIAN_JEMALLOC = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libjemalloc.so.2`;

/** Makes sure jemalloc is there; returns whether it is. `say` reports what it does or what to do. */
export function ensureJemalloc(say: (message: string) => void): boolean {
  if (existsSync(DEBIAN_JEMALLOC)) return true;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    say(`jemalloc is not installed: the services run on glibc's malloc and idle with more memory (sudo apt-get install -y libjemalloc2)`);
    return false;
  }
  say('installing libjemalloc2 (apt-get): the services\' allocator');
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'libjemalloc2']]) {
    const res = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (res.status !== 0) {
      say(`apt-get ${args.join(' ')} failed (exit ${res.status}): the services run on glibc's malloc`);
      return false;
    }
  }
  return existsSync(DEBIAN_JEMALLOC);
}
