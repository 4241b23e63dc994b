/**
 * `make demo` (with `make dev` running): places a few orders — one of them meets an injected
 * shipping failure — and prints how each saga ended, step by step.
 *   GATEWAY_URL (default http://127.0.0.1:8080), API_KEY (default the dev key), ADMIN_API_KEY for /admin/* (default API_KEY:
 *   make dev's dev key is an admin key; against `make up`, API_KEY=$(cat .dev/cluster/api-key) ADMIN_API_KEY=$(cat .dev/cluster/admin-key))
 */
import { DEV_API_KEY, Ports } from '@sagamesh/contracts';
import { GatewayClient } from './lib/client.ts';

const apiKey = process.env.API_KEY ?? DEV_API_KEY;
const api = new GatewayClient(process.env.GATEWAY_URL ?? `http://127.0.0.1:${Ports.gateway}`, apiKey, process.env.ADMIN_API_KEY ?? apiKey);

try {
  await api.audit();
} catch (err) {
  console.error(`cannot reach the gateway at ${api.baseUrl} (${err instanceof Error ? err.message : String(err)}): start the platform with \`make dev\` first`);
  process.exit(1);
}

async function place(label: string, items: { sku: string; quantity: number }[]): Promise<[string, string]> {
  const id = await api.placeOrder({ customerId: 'demo', items });
  console.log(`placed ${id}  (${label})`);
  return [label, id];
}

const happy = [await place('happy path', [{ sku: 'sku-1', quantity: 1 }]), await place('two items', [{ sku: 'sku-2', quantity: 1 }, { sku: 'sku-3', quantity: 2 }])];
await api.waitForOrders(happy.map(([, id]) => id), 30_000);
console.log('\ninjecting a fault: every shipping.create fails (PUT /admin/faults)');
await api.putFault({ target: 'shipping.create', failureRate: 1, latencyMs: 0, crashAfterCommit: false });
let failing: [string, string];
try {
  failing = await place('shipping fails → compensates', [{ sku: 'sku-4', quantity: 3 }]);
  await api.waitForOrders([failing[1]], 30_000);
} finally {
  await api.clearFaults();
  console.log('faults cleared (DELETE /admin/faults)');
}
const oversell = await place('more than the scarce sku has → out of stock', [{ sku: 'sku-rare', quantity: 1000 }]);
const all = [...happy, failing, oversell];
const views = await api.waitForOrders(all.map(([, id]) => id), 30_000);

console.log('\nhow each saga ended:');
for (const [label, id] of all) {
  const v = views.get(id)!;
  console.log(`\n${id}  ${label}\n  order ${v.status}${v.reason ? ` (${v.reason})` : ''}, total ${(v.total / 100).toFixed(2)}, saga ${v.saga?.phase ?? '?'}`);
  for (const s of v.saga?.steps ?? []) console.log(`    ${s.name.padEnd(18)} ${s.status.padEnd(12)} attempts ${s.attempts}`);
}
const audit = await api.audit();
console.log(`\nbooks: charged ${audit.payments.charged} − refunded ${audit.payments.refunded} = ${audit.payments.charged - audit.payments.refunded} cents; confirmed orders total ${audit.orders.confirmed.total} cents`);
