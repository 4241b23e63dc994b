import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { DEFAULT_STORE_MIB } from '@sagamesh/contracts';

/** Bad configuration: the message names every offending variable and what it must be. */
export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(issues: string[]) {
    super(issues.join('; '));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The fields every service has; spread into each service's own schema. */
export const CommonConfig = {
  NATS_URL: Type.String({ minLength: 1, default: 'nats://127.0.0.1:4222', description: 'NATS server URL(s), comma-separated' }),
  NATS_USER: Type.Optional(
    Type.String({ minLength: 1, description: "This process's NATS user (its identity on the bus); unset on a nats-server without authorization" }),
  ),
  NATS_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: "NATS_USER's password (never logged)" })),
  LOG_LEVEL: Type.Union(
    LogLevels.map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Interface the HTTP server binds' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 10_000, description: 'How long shutdown may take before exit 1' }),
  SHUTDOWN_DELAY_MS: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 0,
    description: 'How long the HTTP server keeps answering after SIGTERM (readiness failing) before it closes: a few seconds in Kubernetes, where endpoints drop a terminating pod with a delay; part of SHUTDOWN_GRACE_MS',
  }),
  MAX_IN_FLIGHT: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 1024,
    description: 'HTTP requests handled at once, at most; past it a request is answered 503 overloaded with Retry-After',
  }),
  JETSTREAM_REPLICAS: Type.Integer({
    minimum: 1,
    maximum: 5,
    default: 1,
    description: 'Replicas of every stream and KV bucket this process creates: 1 on one nats-server (make dev, tests), the JetStream cluster size in the cluster',
  }),
  JETSTREAM_STORE_MIB: Type.Integer({
    minimum: 1,
    maximum: 16_777_216,
    default: DEFAULT_STORE_MIB,
    description: "JetStream store budget in MiB that the platform's streams and buckets share (their max_bytes: @sagamesh/contracts StreamLimits, BucketLimits); at most the nats-server's max_file_store (the cluster's is 1536)",
  }),
};

/**
 * The provisioning run (provision-main.ts; the cluster's `nats-provision` Job): the admin identity, which alone may
 * create and update streams and buckets, and the replicas and store budget it gives them.
 */
export const ProvisionConfigSchema = Type.Object({
  NATS_URL: CommonConfig.NATS_URL,
  NATS_USER: Type.Optional(Type.String({ minLength: 1, description: 'The admin identity (the only one that may create streams and buckets); unset on a nats-server without authorization' })),
  NATS_PASSWORD: CommonConfig.NATS_PASSWORD,
  LOG_LEVEL: CommonConfig.LOG_LEVEL,
  JETSTREAM_REPLICAS: CommonConfig.JETSTREAM_REPLICAS,
  JETSTREAM_STORE_MIB: CommonConfig.JETSTREAM_STORE_MIB,
});
export type ProvisionConfig = Static<typeof ProvisionConfigSchema>;

/** The HTTP port every service has (0 picks a free one, as the tests do). */
export const portConfig = (port: number) => ({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: port, description: 'HTTP port (0 picks a free one)' }),
});

// Values of these are never echoed back in an error message.
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL/i;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

// TypeBox's Value.Convert truncates ("1.5" → 1 for an integer, "0x10" → 0): coerce strictly instead,
// and leave anything that is not a clean number/boolean as a string so the check reports it.
function coerce(schema: TSchema, raw: string): unknown {
  const type = (schema as { type?: unknown }).type;
  if (type === 'integer' || type === 'number') return NUMBER.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (type === 'boolean') {
    const v = raw.trim().toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    return raw;
  }
  return raw;
}

/** What a value of this schema must be, in words ("an integer between 1 and 65535"). */
function describe(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  const range = (): string => {
    const min = s.minimum ?? s.exclusiveMinimum;
    const max = s.maximum ?? s.exclusiveMaximum;
    if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
    if (min !== undefined) return ` >= ${min}`;
    if (max !== undefined) return ` <= ${max}`;
    return '';
  };
  if (Array.isArray(s.anyOf) && s.anyOf.every((o: { const?: unknown }) => o.const !== undefined)) {
    return `one of ${s.anyOf.map((o: { const: unknown }) => String(o.const)).join(', ')}`;
  }
  switch (s.type) {
    case 'integer':
      return `an integer${range()}`;
    case 'number':
      return `a number${range()}`;
    case 'boolean':
      return 'true or false';
    case 'string': {
      const parts = ['a string'];
      if (typeof s.minLength === 'number' && s.minLength > 0) parts.push(`of at least ${s.minLength} characters`);
      if (typeof s.pattern === 'string') parts.push(`matching /${s.pattern}/`);
      if (typeof s.format === 'string') parts.push(`in ${s.format} format`);
      return parts.join(' ');
    }
    default:
      return 'a valid value';
  }
}

/**
 * Reads a TypeBox object schema whose keys are environment variable names: numbers and booleans are
 * coerced from strings, defaults applied, and every problem is reported at once in a ConfigError
 * (e.g. `PORT must be an integer between 1 and 65535, got "abc"`). An empty variable counts as unset.
 */
export function loadConfig<T extends TObject>(schema: T, env: NodeJS.ProcessEnv = process.env): Static<T> {
  const raw: Record<string, unknown> = {};
  const issues: string[] = [];
  for (const [key, prop] of Object.entries(schema.properties)) {
    const text = env[key];
    if (text === undefined || text === '') continue;
    const value = coerce(prop, text);
    raw[key] = value;
    if (!TypeCompiler.Compile(prop).Check(value)) {
      const got = SECRET_NAME.test(key) ? '' : `, got "${text}"`;
      issues.push(`${key} must be ${describe(prop)}${got}`);
    }
  }
  const withDefaults = Value.Default(schema, raw) as Record<string, unknown>;
  for (const key of schema.required ?? []) {
    if (withDefaults[key] === undefined) {
      const desc = (schema.properties[key] as { description?: string }).description;
      issues.push(`${key} is required${desc ? ` (${desc})` : ''}`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  // Every property was checked above; this catches object-level rules (none today) all the same.
  if (!Value.Check(schema, withDefaults)) {
    throw new ConfigError([...Value.Errors(schema, withDefaults)].map((e) => `${e.path.slice(1) || 'config'}: ${e.message}`));
  }
  return withDefaults as Static<T>;
}
