import { createHash } from 'node:crypto';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { ConfigError } from '@sagamesh/kit';

const MIN_KEY_LENGTH = 16;

/** Who is calling: `scope` (a hash of the API key) scopes idempotency keys and rate limits; `id` is safe to log. */
export interface Caller {
  scope: string;
  id: string;
}

export type AuthResult = { ok: true; caller: Caller } | { ok: false; message: string };

/** The API key's hash: keys are never stored, compared or logged in the clear past this point. */
export function keyScope(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 32);
}

/**
 * The accepted API keys, from API_KEYS (+ the dev key under DEV_MODE). Lookup is by hash, so the
 * comparison does not leak how much of a guessed key matched.
 */
export class ApiKeys {
  readonly #scopes: ReadonlySet<string>;

  constructor(scopes: ReadonlySet<string>) {
    this.#scopes = scopes;
  }

  static fromConfig(config: { API_KEYS: string; DEV_MODE: boolean }): ApiKeys {
    const keys = config.API_KEYS.split(',').map((k) => k.trim()).filter((k) => k !== '');
    const short = keys.filter((k) => k.length < MIN_KEY_LENGTH).length;
    if (short > 0) throw new ConfigError([`API_KEYS must list keys of at least ${MIN_KEY_LENGTH} characters (${short} too short)`]);
    if (config.DEV_MODE) keys.push(DEV_API_KEY);
    if (keys.length === 0) throw new ConfigError(['API_KEYS is required (comma-separated keys), or DEV_MODE=true for the dev key']);
    return new ApiKeys(new Set(keys.map(keyScope)));
  }

  get size(): number {
    return this.#scopes.size;
  }

  /** Checks an `Authorization` header value. */
  authenticate(authorization: string | undefined): AuthResult {
    if (!authorization) return { ok: false, message: 'missing Authorization header: send "Authorization: Bearer <api key>"' };
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!m) return { ok: false, message: 'malformed Authorization header: use "Bearer <api key>"' };
    const scope = keyScope(m[1]!);
    if (!this.#scopes.has(scope)) return { ok: false, message: 'invalid API key' };
    return { ok: true, caller: { scope, id: scope.slice(0, 8) } };
  }
}
