/**
 * The HPA demo on the live cluster: `make load` drives the gateway; at least one HPA scales out (as `make load` prints
 * and as the API says), every accepted order ends, the books balance, and the HPAs come back in after the load.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { booksAtRest, eventually, hpas, makeLoad, phase, type HpaReplicas } from './live.ts';

const DURATION_S = process.env.CI === 'true' ? 120 : 150;

it('make load scales an HPA out, every order ends, and the HPAs scale back in', async (t) => {
  phase('hpa: metrics-server serves CPU for every HPA');
  await eventually('every HPA reads its CPU (metrics-server)', 180_000, async () => {
    const list = await hpas();
    return list.length >= 3 && list.every((h) => h.current >= h.min) ? list : undefined;
  }, 5000);
  const before = await hpas();
  phase(`hpa: before: ${fmt(before)}; make load for ${DURATION_S}s`);
  const peaks = new Map(before.map((h) => [h.name, h.current]));
  let watching = true;
  const watch = (async () => {
    while (watching) {
      for (const h of await hpas().catch(() => [])) peaks.set(h.name, Math.max(peaks.get(h.name) ?? 0, h.current, h.desired));
      await new Promise((r) => setTimeout(r, 3000));
    }
  })();
  let out: string;
  try {
    out = await makeLoad([`DURATION=${DURATION_S}`], (DURATION_S + 120) * 1000);
  } finally {
    watching = false;
    await watch;
  }
  t.diagnostic(out);
  phase(`hpa: peak replicas ${[...peaks].map(([n, r]) => `${n}=${r}`).join(' ')}`);
  const scaled = before.filter((h) => (peaks.get(h.name) ?? 0) > h.current);
  assert.ok(scaled.length >= 1, `at least one HPA scaled out (before ${fmt(before)}, peaks ${[...peaks].map(([n, r]) => `${n}=${r}`).join(' ')})`);
  assert.match(out, /replicas/i, 'make load prints the HPA replicas');

  phase('hpa: every accepted order ends, books balance');
  const { audit, violations } = await booksAtRest(240_000);
  assert.deepEqual(violations, []);
  assert.ok(audit.orders.confirmed.count > 0);

  phase('hpa: waiting for the scale-in');
  const after = await eventually('every HPA back to its minimum', 420_000, async () => {
    const list = await hpas();
    return list.every((h) => h.current === h.min) ? list : undefined;
  }, 10_000);
  phase(`hpa: after: ${fmt(after)}`);
});

function fmt(list: readonly HpaReplicas[]): string {
  return list.map((h) => `${h.name}=${h.current}`).join(' ');
}
