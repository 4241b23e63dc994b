/**
 * The browser tier's rig: Debian's chromium (installed with apt when missing and this is root, as .ci/run does; no
 * browser download), driven by playwright-core; the explorer built when stale; screenshots as git-ignored artefacts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';
import { ensureUiBuilt } from '../../scripts/lib/ui.ts';

export const ARTIFACTS = path.join(REPO_ROOT, 'test-results', 'browser');
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** Debian's chromium, installed first when it is missing (as root: apt-get; otherwise the error says what to run). */
export function chromiumPath(): string {
  const found = () => CANDIDATES.find((p) => existsSync(p));
  if (found()) return found()!;
  if (process.getuid?.() !== 0) throw new Error('the browser tests need Debian\'s chromium: sudo apt-get install -y chromium');
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'chromium']]) {
    const res = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (res.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${res.status})`);
  }
  if (!found()) throw new Error('apt-get installed chromium, but no chromium binary is where Debian puts it');
  return found()!;
}

/** Builds ui/dist when stale, then starts chromium. Call it before starting the platform: the gateway serves /ui/ only if ui/dist existed when it started. */
export async function launchBrowser(): Promise<Browser> {
  ensureUiBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  // --no-sandbox: the tests run as root in CI, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The page's accessibility violations (axe-core, WCAG 2 A and AA rules), as readable lines. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** Opens the explorer and signs in with `key` by the keyboard alone. */
export async function signIn(page: Page, gatewayUrl: string, key: string): Promise<void> {
  await page.goto(`${gatewayUrl}/ui/`);
  await page.getByLabel('API key').focus();
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}
