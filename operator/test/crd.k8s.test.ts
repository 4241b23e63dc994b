/**
 * The generated CRDs on a real kube-apiserver: invalid objects are refused by the API server itself,
 * each with a message that says what to fix.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { SAGAMESH_GROUP, SAGAMESH_VERSION, orderFulfillmentDefinition } from '@sagamesh/contracts';
import { REPO_ROOT } from '@sagamesh/testing';
import { NS, create, definitionObject, kubectl, sagaObject, startPlatform, type Platform } from './harness.ts';

let p: Platform;
before(async () => {
  p = await startPlatform({ engine: false });
});
after(async () => p?.stop());

type Json = Record<string, any>;
const def = (mutate: (spec: Json) => void, name = 'bad'): Json => {
  const obj = definitionObject(name) as Json;
  mutate(obj.spec);
  return obj;
};
const saga = (mutate: (spec: Json) => void): Json => {
  const obj = sagaObject('bad') as Json;
  mutate(obj.spec);
  return obj;
};

/** Creates `obj` in the test namespace as kubectl does (strict field validation); with `dryRun: 'All'` nothing is stored. */
const createStrictly = (obj: Json, opts: { dryRun?: 'All' } = {}) =>
  p.api.createNamespacedCustomObject({
    group: SAGAMESH_GROUP,
    version: SAGAMESH_VERSION,
    namespace: NS,
    plural: obj.kind === 'Saga' ? 'sagas' : 'sagadefinitions',
    body: obj,
    fieldValidation: 'Strict',
    ...opts,
  });

/** What the API server answers to creating `obj`. */
async function refusal(obj: Json): Promise<string> {
  try {
    await createStrictly(obj);
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    assert.ok(e.code === 422 || e.code === 400, `refused with 4xx, got ${e.code}`);
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as Json) : (e.body as Json);
    return body.message as string;
  }
  assert.fail(`the API server accepted ${JSON.stringify(obj.spec)}`);
}

const known = 'use one of inventory.reserve, inventory.release, payments.charge, payments.refund, shipping.create, shipping.cancel';
const cases: [string, Json, string][] = [
  ['missing steps', def((s) => delete s.steps), 'spec.steps: Required value'],
  ['no steps at all', def((s) => (s.steps = [])), 'spec.steps: Invalid value: 0: spec.steps in body should have at least 1 items'],
  ['duplicate step names', def((s) => (s.steps[2].name = s.steps[0].name)), 'spec.steps: Invalid value: step names must be unique: give every step its own name'],
  ['an unknown compensation', def((s) => (s.steps[1].compensation = { service: 'payments', command: 'refnd' })), `spec.steps[1].compensation: Invalid value: compensation payments.refnd is not a known command: ${known}`],
  ['an unknown action command', def((s) => (s.steps[0].action = { service: 'inventory', command: 'reserve-all' })), 'action inventory.reserve-all is not a known command'],
  ['an unknown participant', def((s) => (s.steps[0].action = { service: 'billing', command: 'charge' })), 'action billing.charge is not a known command'],
  ['a bad duration', def((s) => (s.steps[0].timeout = '5 seconds')), 'spec.steps[0].timeout: Invalid value: "5 seconds": timeout must be a duration: a number with a unit (ms, s, m, h), e.g. 500ms, 5s, 2m, 1h30m'],
  ['a bad deadline', def((s) => (s.deadline = '1m30')), 'deadline must be a duration'],
  ['negative retries', def((s) => (s.steps[0].retry.attempts = -1)), 'spec.steps[0].retry.attempts: Invalid value: -1: spec.steps[0].retry.attempts in body should be greater than or equal to 1'],
  ['a backoff that shrinks', def((s) => (s.compensationRetry.backoff.multiplier = 0.5)), 'spec.compensationRetry.backoff.multiplier in body should be greater than or equal to 1'],
  ['a bad step name', def((s) => (s.steps[0].name = 'reserve.inventory')), `spec.steps[0].name: Invalid value: "reserve.inventory": name must be 1-128 letters, digits, '-' or '_' ('.' is reserved as the separator)`],
  ['a definition name with a dot', def(() => undefined, 'order.fulfillment'), "SagaDefinition names must be lowercase letters, digits and '-' (a DNS label, at most 63 characters, no '.')"],
  ['an unknown field', def((s) => (s.extra = true)), 'unknown field "spec.extra"'],
  ['a Saga without definitionRef', saga((s) => delete s.definitionRef), 'spec.definitionRef: Required value'],
  ['a Saga without input', saga((s) => delete s.input), 'spec.input: Required value'],
  ['a bad fault rate', saga((s) => (s.faults = [{ target: 'payments.charge', failureRate: 1.5 }])), 'spec.faults[0].failureRate: Invalid value: 1.5: spec.faults[0].failureRate in body should be less than or equal to 1'],
  ['a fault on an unknown command', saga((s) => (s.faults = [{ target: 'payments.pay', failureRate: 1 }])), `spec.faults[0].target: Invalid value: fault target payments.pay is not a known command: ${known}`],
  ['a malformed fault target', saga((s) => (s.faults = [{ target: 'payments', failureRate: 1 }])), 'target must be <service>.<command>, e.g. payments.charge'],
];

describe('the API server refuses invalid objects, saying what to fix', () => {
  it(`has at least 10 cases (${cases.length})`, () => assert.ok(cases.length >= 10));
  for (const [what, obj, message] of cases) {
    it(what, async () => assert.ok((await refusal(obj)).includes(message), `expected "${message}" in the answer`));
  }

  it('a Saga spec change after it started: spec is immutable', async () => {
    const created = (await create(p, sagaObject('fixed'))) as Json;
    created.spec.input.amountCents = 1;
    try {
      await p.api.replaceNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace: NS, plural: 'sagas', name: 'fixed', body: created });
      assert.fail('the spec change was accepted');
    } catch (err) {
      const e = err as { code?: number; body?: unknown };
      assert.equal(e.code, 422);
      assert.match(String(e.body), /spec: Invalid value: spec is immutable: a run keeps the input it started with; delete the Saga and create a new one to run again/);
    }
  });

  it('the valid built-in definition and a valid Saga are accepted, with defaults applied', async () => {
    const created = (await create(p, definitionObject('valid', { steps: orderFulfillmentDefinition.steps.map(({ timeout: _t, retry: _r, ...s }) => s) }))) as Json;
    assert.equal(created.spec.steps[0].timeout, '5s', 'the schema default');
    const s = (await create(p, sagaObject('valid-run', { faults: [{ target: 'payments.charge', failureRate: 1 } as never] }))) as Json;
    assert.deepEqual(s.spec.faults[0], { target: 'payments.charge', failureRate: 1, latencyMs: 0, crashAfterCommit: false });
  });

  it('kubectl apply shows the same message to a person', async () => {
    const file = path.join(path.dirname(p.rig.kubeconfigPath), 'bad.json');
    writeFileSync(file, JSON.stringify(def((s) => (s.steps[1].compensation = { service: 'payments', command: 'refnd' }), 'kubectl-bad')));
    const out = await kubectl(p, ['apply', '-f', file]);
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /The SagaDefinition "kubectl-bad" is invalid: spec.steps\[1\].compensation: Invalid value: compensation payments.refnd is not a known command/);
  });
});

describe('examples/', () => {
  it('every object in examples/*.yaml is accepted by the API server (server-side dry run)', async () => {
    const dir = path.join(REPO_ROOT, 'examples');
    const objects = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => ({ file: f, obj: d.toJS() as Json })));
    assert.ok(objects.some((o) => o.obj.kind === 'SagaDefinition') && objects.filter((o) => o.obj.kind === 'Saga').length >= 2);
    for (const { file, obj } of objects) {
      await createStrictly(obj, { dryRun: 'All' }).catch((err: unknown) => assert.fail(`${file}: ${String((err as { body?: unknown }).body ?? err)}`));
    }
  });
});
