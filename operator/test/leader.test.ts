import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfig } from '@sagamesh/runtime';
import { OperatorConfig, checkLeaseTimings } from '../src/config.ts';
import { leaseStep, type LeaseRecord } from '../src/leader.ts';

const lease = (holder: string | undefined, durationMs = 15_000): LeaseRecord => ({ holder, durationMs, transitions: 0, resourceVersion: '1' });

describe('leaseStep', () => {
  it('no lease yet: create it', () => assert.equal(leaseStep(undefined, 'me', 0, 0), 'create'));
  it('ours: renew it', () => assert.equal(leaseStep(lease('me'), 'me', 100_000, 0), 'renew'));
  it('released (no holder): acquire it at once', () => assert.equal(leaseStep(lease(undefined), 'me', 1, 0), 'acquire'));
  it('held by another and renewed within its duration: follow', () => assert.equal(leaseStep(lease('other'), 'me', 14_999, 0), 'follow'));
  it('held by another, unrenewed for its whole duration on our clock: take it over', () => assert.equal(leaseStep(lease('other'), 'me', 15_000, 0), 'acquire'));

  it('a live holder is never overtaken, whatever the timing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 60_000 }), fc.nat(1_000_000), fc.nat(), (durationMs, observedAt, sinceObserved) => {
        const now = observedAt + (sinceObserved % durationMs);
        assert.equal(leaseStep(lease('other', durationMs), 'me', now, observedAt), 'follow');
        assert.equal(leaseStep(lease('other', durationMs), 'me', observedAt + durationMs + sinceObserved, observedAt), 'acquire');
      }),
    );
  });
});

describe('lease timings', () => {
  it('must nest: retry period < renew deadline < lease duration', () => {
    const config = (env: Record<string, string>) => loadConfig(OperatorConfig, env);
    checkLeaseTimings(config({}));
    assert.throws(() => checkLeaseTimings(config({ LEASE_DURATION_MS: '5000', LEASE_RENEW_DEADLINE_MS: '5000' })), /LEASE_RENEW_DEADLINE_MS must be shorter than LEASE_DURATION_MS/);
    assert.throws(() => checkLeaseTimings(config({ LEASE_RETRY_PERIOD_MS: '10000' })), /LEASE_RETRY_PERIOD_MS must be shorter than LEASE_RENEW_DEADLINE_MS/);
  });
});
