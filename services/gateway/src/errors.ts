import type { ValidationError } from '@sagamesh/contracts';

/** `"<path>: <what to fix>"`, one issue per offending path (the first reason TypeBox gives), at most 5. */
export function describeIssues(err: ValidationError): string {
  const byPath = new Map<string, string>();
  for (const issue of err.issues) {
    const path = issue.path || '/';
    if (!byPath.has(path)) byPath.set(path, issue.message);
  }
  const parts = [...byPath].slice(0, 5).map(([path, message]) => `${path}: ${message}`);
  const more = byPath.size > 5 ? ` (and ${byPath.size - 5} more)` : '';
  return parts.join('; ') + more;
}

/** Seconds for a Retry-After header, at least 1. */
export const retryAfterSeconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));
