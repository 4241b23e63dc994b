import type { KV } from '@nats-io/kv';
import {
  definitionRevision,
  DefineRequest,
  definitionIssues,
  SagaDefinitionSpec,
  ValidationError,
  validator,
  type DefineResponse,
  type EngineErrorCode,
} from '@sagamesh/contracts';
import { resolveDefinition, type ResolvedDefinition } from './core/definition.ts';

/** An engine API failure with its contract code; the API layer turns it into `{error:{code,message}}`. */
export class EngineApiError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EngineApiError';
    this.code = code;
  }
}

const defineValidator = validator(DefineRequest, 'define request');
const specValidator = validator(SagaDefinitionSpec, 'saga definition');

/** Checks what the schema cannot (contracts' definitionIssues, the CRD's CEL rules in code): unique step names, known commands. */
export function checkSpec(spec: SagaDefinitionSpec): void {
  const issues = definitionIssues(spec);
  if (issues.length > 0) throw new ValidationError('saga definition', issues);
}

const specKey = (key: string, revision: string) => `spec.${key}.${revision}`;
const headKey = (key: string) => `head.${key}`;

interface StoredDefinition {
  key: string;
  revision: string;
  /** The spec as defined (its hash is the revision); defaults are applied on resolution. */
  spec: SagaDefinitionSpec;
}

/**
 * Saga definitions in KV saga-definitions: `spec.<key>.<revision>` (immutable: the revision is the
 * spec's hash) and `head.<key>` → the latest revision. Resolved revisions are cached for good.
 */
export class DefinitionStore {
  readonly #kv: KV;
  readonly #cache = new Map<string, ResolvedDefinition>();
  readonly #onDefined: ((key: string, steps: readonly string[]) => void) | undefined;

  /** `onDefined`: told of each definition this process stores or finds stored, with its step names (for the metrics). */
  constructor(kv: KV, onDefined?: (key: string, steps: readonly string[]) => void) {
    this.#kv = kv;
    this.#onDefined = onDefined;
  }

  async define(request: unknown): Promise<DefineResponse> {
    let req: DefineRequest;
    try {
      // Validate with defaults applied, but hash and store the spec as sent: the same spec, the same revision.
      defineValidator.parse(request);
      req = request as DefineRequest;
      checkSpec(req.spec);
    } catch (err) {
      if (err instanceof ValidationError) throw new EngineApiError('invalid_request', err.message, { cause: err });
      throw err;
    }
    const revision = definitionRevision(req.spec);
    const stored: StoredDefinition = { key: req.key, revision, spec: req.spec };
    const k = specKey(req.key, revision);
    if (!(await this.#kv.get(k))?.value.length) await this.#kv.put(k, JSON.stringify(stored));
    const head = await this.#kv.get(headKey(req.key));
    if (head?.string() !== revision) await this.#kv.put(headKey(req.key), revision);
    this.#onDefined?.(req.key, req.spec.steps.map((st) => st.name));
    return { key: req.key, revision };
  }

  /** The pinned definition, or undefined when that key/revision was never defined. */
  async get(key: string, revision: string): Promise<ResolvedDefinition | undefined> {
    const id = `${key}@${revision}`;
    const hit = this.#cache.get(id);
    if (hit) return hit;
    const entry = await this.#kv.get(specKey(key, revision));
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    const stored = entry.json<StoredDefinition>();
    const resolved = resolveDefinition(key, revision, specValidator.parse(stored.spec));
    this.#cache.set(id, resolved);
    return resolved;
  }

  /** Tells `onDefined` of every defined key's latest definition (at start-up). One that cannot be read is left out. */
  async announceStored(): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.#kv.keys(headKey('>'))) keys.push(k.slice(headKey('').length));
    const found = await Promise.allSettled(keys.map((key) => this.forStart(key, '')));
    for (const f of found) if (f.status === 'fulfilled') this.#onDefined?.(f.value.key, f.value.steps.map((st) => st.name));
  }

  /**
   * The definition a start request names. An empty revision means the latest; a revision that does not
   * exist is `revision_mismatch` when the key exists, `unknown_definition` otherwise.
   */
  async forStart(key: string, revision: string): Promise<ResolvedDefinition> {
    if (revision) {
      const d = await this.get(key, revision);
      if (d) return d;
    }
    const head = (await this.#kv.get(headKey(key)))?.string();
    if (!head) throw new EngineApiError('unknown_definition', `no saga definition "${key}" is defined`);
    if (revision && revision !== head) {
      throw new EngineApiError('revision_mismatch', `definition "${key}" has no revision ${revision} (latest is ${head})`);
    }
    const d = await this.get(key, head);
    if (!d) throw new EngineApiError('internal', `definition "${key}" points at revision ${head}, which is missing`);
    return d;
  }
}
