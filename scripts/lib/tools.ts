/** Where the pinned binaries live (.tools/bin, built by `make tools`), and building what is missing. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TOOLS_BIN = path.join(REPO_ROOT, '.tools', 'bin');

export type Tool = 'nats-server' | 'nats' | 'etcd' | 'kube-apiserver' | 'kubectl' | 'prometheus' | 'promtool' | 'helm';
export const ALL_TOOLS: readonly Tool[] = ['nats-server', 'nats', 'etcd', 'kube-apiserver', 'kubectl', 'prometheus', 'promtool', 'helm'];

export function toolPath(tool: Tool): string {
  return path.join(TOOLS_BIN, tool);
}

/** The pins of tools/versions.env. */
export function toolVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path.join(REPO_ROOT, 'tools', 'versions.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Builds (via scripts/tools.sh, which prints progress) whichever of `tools` is missing. */
export async function ensureTools(tools: readonly Tool[]): Promise<void> {
  const missing = tools.filter((t) => !existsSync(toolPath(t)));
  if (missing.length === 0) return;
  const buildNames = [...new Set(missing.map((t) => (t === 'promtool' ? 'prometheus' : t === 'kubectl' ? 'kubectl' : t)))];
  process.stderr.write(`[tools] missing ${missing.join(', ')}: building them (make tools)\n`);
  const res = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'tools.sh'), ...buildNames], { stdio: 'inherit', cwd: REPO_ROOT });
  if (res.status !== 0) throw new Error(`building ${missing.join(', ')} failed: run \`make tools\` and read its output`);
}
