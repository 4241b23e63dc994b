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
}

/** Compiles a schema once; `what` names the thing in error messages ("order request"). */
export function validator<T extends TSchema>(schema: T, what: string): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    parse(value: unknown): Static<T> {
      const withDefaults = Value.Default(schema, structuredClone(value));
      if (compiled.Check(withDefaults)) return withDefaults as Static<T>;
      throw new ValidationError(what, [...compiled.Errors(withDefaults)].map((e) => ({ path: e.path, message: e.message })));
    },
  };
}
