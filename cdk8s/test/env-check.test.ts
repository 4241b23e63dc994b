import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { CONFIG_SCHEMAS } from '../src/config-schemas.ts';
import { envProblems } from '../src/env-check.ts';
import { synthAll, testConfig } from './helpers.ts';

const deployment = (objs: Record<string, any>[], name: string) => objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!;
const appEnv = (d: Record<string, any>) => d.spec.template.spec.containers.find((c: any) => c.name === 'app').env as { name: string; value?: string }[];

describe("the workloads' environment against their processes' config schemas", () => {
  it('the platform as synthesized, faults on and off, sets only what each process knows and all it requires', () => {
    for (const faultInjection of [false, true]) assert.deepEqual(envProblems(synthAll(testConfig({ faultInjection })), CONFIG_SCHEMAS), []);
  });

  it('a variable a process does not know fails, naming the workload and the variable', () => {
    const objs = synthAll();
    appEnv(deployment(objs, 'orders')).push({ name: 'FAULT_INJECTION', value: 'true' });
    const problems = envProblems(objs, CONFIG_SCHEMAS);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^orders: sets FAULT_INJECTION, which its config does not know/);
  });

  it('a key of a shared ConfigMap counts for every workload that takes it whole', () => {
    const objs = synthAll();
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sagamesh-platform')!;
    cm.data.SWEEP_GRACE_MS = '1000';
    const problems = envProblems(objs, CONFIG_SCHEMAS);
    // Only the orchestrator knows it: every other process that takes the ConfigMap is told.
    assert.ok(problems.length >= 6, problems.join('\n'));
    assert.ok(problems.every((p) => /sets SWEEP_GRACE_MS/.test(p)));
    assert.ok(!problems.some((p) => p.startsWith('orchestrator:')));
  });

  it('a required variable without a default that is not set fails; a workload without a schema fails', () => {
    const objs = synthAll();
    const strict = { ...CONFIG_SCHEMAS, payments: Type.Object({ ...CONFIG_SCHEMAS.payments!.properties, LEDGER_DSN: Type.String() }) };
    assert.deepEqual(envProblems(objs, strict), ['payments: LEDGER_DSN is required by its config and not set']);
    const { shipping: _dropped, ...withoutShipping } = CONFIG_SCHEMAS;
    assert.deepEqual(envProblems(objs, withoutShipping), ['shipping: no config schema to check its environment against (add it to cdk8s/src/config-schemas.ts)']);
  });
});
