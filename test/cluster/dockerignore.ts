/** .dockerignore read the way Docker applies it, for the Dockerfile tests (unit and cluster tiers). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

export const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** A .dockerignore pattern as a regex: Go filepath.Match (`*`, `?` within a segment; dot files included) plus `**`. */
function patternRegex(pattern: string): RegExp {
  const body = pattern.replace(/\/$/, '').split(/(\*\*|\*|\?)/).map((t) => (t === '**' ? '.*' : t === '*' ? '[^/]*' : t === '?' ? '[^/]' : t.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

/** Whether the build context keeps a path, by .dockerignore's rules (the last matching pattern wins). */
export function inContext(rel: string): boolean {
  let kept = true;
  for (const raw of ignore) {
    const negate = raw.startsWith('!');
    const pattern = negate ? raw.slice(1) : raw;
    // A pattern also matches everything below a matched directory.
    const parts = rel.split('/');
    const re = patternRegex(pattern);
    const matched = parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
    if (matched) kept = negate;
  }
  return kept;
}

