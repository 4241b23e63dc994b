/**
 * The README's walk-through, literally, on the live cluster: kubectl apply of examples/, `kubectl wait
 * --for=condition=Completed saga --all`, the phases and Events the README documents, deleting a running Saga
 * compensates it; then orders through http://localhost:8080 with the cluster's API key, and the books balance; the
 * customer key is refused on /admin/*, the admin key is not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrderView } from '@sagamesh/contracts';
import { GatewayClient, statusMismatches } from '../../scripts/lib/client.ts';
import { apiKey, booksAtRest, eventually, GATEWAY_URL, gateway, kubectl, kubectlJson, phase } from './live.ts';

const EXAMPLES = ['examples/order-fulfillment.yaml', 'examples/saga-succeeds.yaml', 'examples/saga-payment-fails.yaml', 'examples/saga-slow.yaml'];

/** The Events of one Saga object (by uid: an earlier Saga of the same name has its own), oldest first, as "Reason step". */
async function eventReasons(saga: string, uid?: string): Promise<string[]> {
  const objUid = uid ?? (await kubectlJson(['get', 'saga', saga])).metadata.uid;
  const list = await kubectlJson<{ items: any[] }>(['get', 'events', '--field-selector', `involvedObject.uid=${objUid}`]);
  // eventTime has microseconds (the operator spaces a burst by 1 µs to keep its order); ISO strings sort as times.
  const at = (e: any): string => e.eventTime ?? e.firstTimestamp;
  return list.items
    .sort((a, b) => at(a).localeCompare(at(b)))
    .map((e) => {
      const step = /^step (\S+)/.exec(e.message ?? e.note ?? '')?.[1];
      return e.reason.startsWith('Step') && step ? `${e.reason} ${step}` : e.reason;
    });
}

/** `sub` appears in `all` in this order (other entries may sit between). */
function inOrder(all: readonly string[], sub: readonly string[]): boolean {
  let i = 0;
  for (const a of all) if (a === sub[i]) i++;
  return i === sub.length;
}

describe('the README kubectl walk-through', () => {
  it('apply examples/ → kubectl wait --for=condition=Completed → Succeeded and Compensated with their Events', async () => {
    phase('walk-through: kubectl apply -f examples/');
    // A rerun on the same cluster starts from fresh runs (a Saga's spec is immutable).
    await kubectl(['delete', '--ignore-not-found', '--wait=true', ...EXAMPLES.slice(1).flatMap((f) => ['-f', f])], { timeoutMs: 120_000 });
    await kubectl(['apply', '-f', 'examples/']);
    await eventually('the SagaDefinition is Ready (the engine has it)', 60_000, async () => {
      const sd = await kubectlJson(['get', 'sagadefinition', 'order-fulfillment']);
      return sd.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
    });
    await kubectl(['wait', '--for=condition=Completed', 'saga', '--all', '--timeout=120s'], { timeoutMs: 130_000 });
    const phaseOf = async (name: string) => (await kubectlJson(['get', 'saga', name])).status.phase;
    assert.equal(await phaseOf('order-1001'), 'Succeeded');
    assert.equal(await phaseOf('order-1002'), 'Compensated');
    assert.equal(await phaseOf('order-1003'), 'Succeeded');
    const printed = await kubectl(['get', 'sagas']);
    assert.match(printed, /order-1002\s+.*Compensated/);

    const failed = await kubectlJson(['get', 'saga', 'order-1002']);
    const charge = failed.status.steps.find((s: any) => s.name === 'charge-payment');
    assert.match(JSON.stringify(charge.error ?? ''), /injected failure of payments\.charge/, 'the failed step says why');
    const reasons = await eventually('order-1002 has its Events', 30_000, async () => {
      const r = await eventReasons('order-1002');
      return r.includes('Compensated') ? r : undefined;
    });
    const documented = ['StepSucceeded reserve-inventory', 'StepFailed charge-payment', 'Compensating', 'StepCompensated reserve-inventory', 'Compensated'];
    assert.ok(inOrder(reasons, documented), `Events ${reasons.join(', ')} contain, in order, ${documented.join(', ')}`);
  });

  it('deleting a running Saga compensates it before it goes away', async () => {
    phase('walk-through: delete a running Saga');
    await kubectl(['delete', '--ignore-not-found', '--wait=true', '-f', 'examples/saga-slow.yaml'], { timeoutMs: 120_000 });
    await kubectl(['apply', '-f', 'examples/saga-slow.yaml']);
    const uid: string = await eventually('order-1003 is Running with a step done', 30_000, async () => {
      const s = await kubectlJson(['get', 'saga', 'order-1003']);
      return s.status?.phase === 'Running' && s.status.steps?.some((st: any) => st.status === 'Succeeded') && s.metadata.uid;
    }, 250);
    // Returns once the finalizer is released, i.e. once the run is compensated.
    await kubectl(['delete', 'saga', 'order-1003', '--timeout=120s'], { timeoutMs: 130_000 });
    // Events are recorded best-effort and asynchronously (like client-go's recorder): give the last one a moment.
    const reasons = await eventually('order-1003 has its Compensated Event', 30_000, async () => {
      const r = await eventReasons('order-1003', uid);
      return r.includes('Compensated') ? r : undefined;
    });
    assert.ok(inOrder(reasons, ['Cancelling', 'Compensating', 'Compensated']), `Events: ${reasons.join(', ')}`);
    assert.ok(reasons.some((r) => r.startsWith('StepCompensated')), `a step was compensated: ${reasons.join(', ')}`);
    assert.ok(!reasons.includes('Succeeded'), `the run did not finish: ${reasons.join(', ')}`);
    await assert.rejects(kubectl(['get', 'saga', 'order-1003']), /NotFound|not found/);
  });

  it('orders through http://localhost:8080 with the cluster API key: confirmed, replayed, 422, and the books balance', async () => {
    phase('walk-through: orders through the gateway');
    const client = gateway();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await client.placeOrder({ customerId: `c-walk-${i}`, items: [{ sku: 'sku-1', quantity: 1 }] }));
    const key = `walk-${Date.now()}`;
    const first = await client.placeOrder({ customerId: 'c-walk-key', items: [{ sku: 'sku-2', quantity: 1 }] }, key);
    assert.equal(await client.placeOrder({ customerId: 'c-walk-key', items: [{ sku: 'sku-2', quantity: 1 }] }, key), first, 'the same key and body is the same order');
    await assert.rejects(client.placeOrder({ customerId: 'c-walk-key', items: [{ sku: 'sku-2', quantity: 2 }] }, key), /HTTP 422/);
    const views = [...(await client.waitForOrders([...ids, first], 60_000)).values()];
    assert.deepEqual(statusMismatches(views), []);
    assert.ok(views.every((v: OrderView) => v.status === 'CONFIRMED'), views.map((v) => `${v.orderId} ${v.status}`).join(', '));
    const { violations } = await booksAtRest();
    assert.deepEqual(violations, []);
    // Admin is a role: booksAtRest read /admin/audit with the admin key; the customer key gets a 403 there.
    await assert.rejects(new GatewayClient(GATEWAY_URL, apiKey()).audit(), /HTTP 403 .*"forbidden"/);
  });
});
