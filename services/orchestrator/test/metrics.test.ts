import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { Metrics } from '@sagamesh/contracts';
import { SagaMetrics } from '../src/metrics.ts';

const samples = async (registry: Registry, name: string): Promise<Record<string, string | number>[]> =>
  (await registry.getSingleMetric(name)!.get()).values.map((v) => ({ ...v.labels, value: v.value }));

describe('saga metrics', () => {
  it('a known definition\'s counters exist at 0 before its first run, so a burst before the next scrape still shows as an increase', async () => {
    const registry = new Registry();
    const m = new SagaMetrics(registry, { counts: () => new Map() });
    m.known('builtin.x', ['reserve', 'charge']);
    assert.deepEqual(await samples(registry, Metrics.sagaCompensationsTotal), [
      { definition: 'builtin.x', step: 'reserve', value: 0 },
      { definition: 'builtin.x', step: 'charge', value: 0 },
    ]);
    assert.deepEqual((await samples(registry, Metrics.sagaEndedTotal)).map((s) => [s.outcome, s.value]), [['succeeded', 0], ['compensated', 0], ['failed', 0]]);
    // Its first run adds to them; knowing it again changes nothing.
    m.started('builtin.x', ['reserve', 'charge']);
    m.known('builtin.x', ['reserve', 'charge']);
    assert.deepEqual(await samples(registry, Metrics.sagaStartedTotal), [{ definition: 'builtin.x', value: 1 }]);
    assert.equal((await samples(registry, Metrics.sagaCompensationsTotal)).length, 2);
  });

  it('a definition first seen with its first run gets its zeroes then', async () => {
    const registry = new Registry();
    const m = new SagaMetrics(registry, { counts: () => new Map() });
    m.started('k8s.ns.y', ['a']);
    assert.deepEqual(await samples(registry, Metrics.sagaStepRetriesTotal), [{ definition: 'k8s.ns.y', step: 'a', value: 0 }]);
  });
});
