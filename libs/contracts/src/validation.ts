import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

/** A schema check failed; `issues` says where and why, for a 4xx body or a dead-letter reason. */
export class ValidationError extends Error {
  readonly issues: readonly { path: string; message: string }[];
  constructor(what: string, issues: { path: string; message: string }[]) {
    const detail = issues.slice(0, 5).map((i) => `${i.path || '/'}: ${i.message}`).join('; ');
    super(`invalid ${what}: ${detail}`);
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

export interface Validator<T extends TSchema> {
  check(value: unknown): value is Static<T>;
  /** Returns the value (with schema defaults applied to a copy) or throws ValidationError. */
  parse(value: unknown): Static<T>;
  /**
   * `parse` for a value nobody else holds (e.g. just parsed from JSON): defaults are applied to it in
   * place, without the copy.
   */
  parseOwned(value: unknown): Static<T>;
}

/** Whether a schema says `default` anywhere (else applying defaults never changes a value). */
function hasDefaults(schema: unknown): boolean {
  if (!schema || typeof schema !== 'object') return false;
  if (Array.isArray(schema)) return schema.some(hasDefaults);
  return Object.entries(schema).some(([k, v]) => k === 'default' || hasDefaults(v));
}

/** Compiles a schema once; `what` names the thing in error messages ("order request"). */
export function validator<T extends TSchema>(schema: T, what: string): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  const defaults = hasDefaults(schema);
  const checked = (value: unknown): Static<T> => {
    if (compiled.Check(value)) return value as Static<T>;
    throw new ValidationError(what, [...compiled.Errors(value)].map((e) => ({ path: e.path, message: e.message })));
  };
  return {
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    parse: (value: unknown): Static<T> => checked(defaults ? Value.Default(schema, structuredClone(value)) : value),
    parseOwned: (value: unknown): Static<T> => checked(defaults ? Value.Default(schema, value) : value),
  };
}
