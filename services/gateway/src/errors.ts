import type { ApiError, ValidationError } from '@sagamesh/contracts';

/** An answer the gateway gives on purpose: status, machine-readable code, what to fix. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, opts?: { headers?: Record<string, string>; cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.headers = opts?.headers ?? {};
  }

  get body(): ApiError {
    return { error: { code: this.code, message: this.message } };
  }
}

export const invalidRequest = (message: string) => new HttpError(400, 'invalid_request', message);

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
