import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RunView, validator } from '../src/index.ts';

it('date-time fields validate (RFC 3339) instead of failing every value', () => {
  const v = validator(RunView, 'run view');
  const view = { runId: 'r', definitionKey: 'builtin.x', revision: 'abc', origin: 'order', phase: 'Running', steps: [], version: 1 };
  assert.ok(v.check({ ...view, startedAt: '2025-01-01T00:00:00.000Z' }));
  assert.ok(v.check({ ...view, startedAt: '2025-01-01T01:00:00+01:00' }));
  assert.ok(!v.check({ ...view, startedAt: 'yesterday' }));
  assert.ok(!v.check({ ...view, startedAt: '2025-13-45T99:00:00Z' }));
});
