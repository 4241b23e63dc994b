import { createHash } from 'node:crypto';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { ConfigError } from '@sagamesh/runtime';

const MIN_KEY_LENGTH = 16;

/** `admin` keys may call `/admin/*` and read every order; `customer` keys read only the orders they placed. */
export type Role = 'admin' | 'customer';

/**
 * Who is calling: `scope` (a hash of the API key) scopes idempotency keys, rate limits and the orders the key
 * placed (their owner); `id` is safe to log.
 */
export interface Caller {
  scope: string;
  id: string;
  role: Role;
}

export type AuthResult = { ok: true; caller: Caller } | { ok: false; message: string };

/** The API key's hash: keys are never stored, compared or logged in the clear past this point. */
export function keyScope(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 32);
}

function keyList(name: string, value: string): string[] {
  const keys = value.split(',').map((k) => k.trim()).filter((k) => k !== '');
  const short = keys.filter((k) => k.length < MIN_KEY_LENGTH).length;
  if (short > 0) throw new ConfigError([`${name} must list keys of at least ${MIN_KEY_LENGTH} characters (${short} too short)`]);
  return keys;
}

/**
 * The accepted API keys and their roles: customer keys from API_KEYS, admin keys from ADMIN_API_KEYS (+ the dev
 * key under DEV_MODE, an admin key). Lookup is by hash, so the comparison does not leak how much of a guessed key matched.
 */
export class ApiKeys {
  readonly #roles: ReadonlyMap<string, Role>;

  constructor(roles: ReadonlyMap<string, Role>) {
    this.#roles = roles;
  }

  static fromConfig(config: { API_KEYS: string; ADMIN_API_KEYS: string; DEV_MODE: boolean }): ApiKeys {
    const customers = keyList('API_KEYS', config.API_KEYS);
    const admins = keyList('ADMIN_API_KEYS', config.ADMIN_API_KEYS);
    if (config.DEV_MODE) admins.push(DEV_API_KEY);
    // A key has one role: one listed twice is a mistake to fix, not a role to guess (the count names no key).
    const adminSet = new Set(admins);
    const both = new Set(customers.filter((k) => adminSet.has(k))).size;
    if (both > 0) {
      throw new ConfigError([`API_KEYS and ADMIN_API_KEYS${config.DEV_MODE ? ' (with the dev key, an admin key under DEV_MODE)' : ''} must not share keys (${both} in both): a key is a customer's or an admin's`]);
    }
    if (customers.length + admins.length === 0) {
      throw new ConfigError(['API_KEYS or ADMIN_API_KEYS is required (comma-separated keys), or DEV_MODE=true for the dev key']);
    }
    const roles = new Map<string, Role>();
    for (const k of customers) roles.set(keyScope(k), 'customer');
    for (const k of admins) roles.set(keyScope(k), 'admin');
    return new ApiKeys(roles);
  }

  get size(): number {
    return this.#roles.size;
  }

  /** How many keys have each role (for the start-up log line). */
  counts(): Record<Role, number> {
    const counts: Record<Role, number> = { admin: 0, customer: 0 };
    for (const role of this.#roles.values()) counts[role]++;
    return counts;
  }

  /** Checks an `Authorization` header value. */
  authenticate(authorization: string | undefined): AuthResult {
    if (!authorization) return { ok: false, message: 'missing Authorization header: send "Authorization: Bearer <api key>"' };
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!m) return { ok: false, message: 'malformed Authorization header: use "Bearer <api key>"' };
    const scope = keyScope(m[1]!);
    const role = this.#roles.get(scope);
    if (role === undefined) return { ok: false, message: 'invalid API key' };
    return { ok: true, caller: { scope, id: scope.slice(0, 8), role } };
  }
}

/** Whether `caller` may read an order owned by `owner` (undefined: an order placed before owners were recorded). */
export function mayRead(caller: Caller, owner: string | undefined): boolean {
  return caller.role === 'admin' || (owner !== undefined && owner === caller.scope);
}
