/**
 * The saga explorer's build (ui/ → ui/dist, which the gateway serves under /ui/): `make dev` and the browser tests
 * call ensureUiBuilt, so nobody runs a build by hand; the Dockerfile builds it in its own stage.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, globSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './tools.ts';

export const UI_DIR = path.join(REPO_ROOT, 'ui');
export const UI_DIST = path.join(UI_DIR, 'dist');

/** Whether ui/dist is older than anything it is built from (or missing). */
export function uiBuildStale(): boolean {
  const built = path.join(UI_DIST, 'index.html');
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const sources = [...globSync('ui/src/**/*', { cwd: REPO_ROOT }), 'ui/index.html', 'ui/vite.config.ts', 'ui/package.json', 'libs/contracts/src/explorer.ts'];
  return sources.some((f) => statSync(path.join(REPO_ROOT, f)).mtimeMs > builtAt);
}

/** Builds ui/dist with Vite when it is stale (about a second); throws with Vite's output when the build fails. */
export function ensureUiBuilt(log: (msg: string) => void = () => {}): void {
  if (!uiBuildStale()) return;
  log('building the saga explorer (ui/ → ui/dist)');
  const vite = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const res = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: UI_DIR, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`the saga explorer's build failed (cd ui && npx vite build):\n${res.stdout}${res.stderr}`);
}
