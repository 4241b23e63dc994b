/**
 * A flood: far more concurrent POST /api/orders than the gateway's and orders' in-flight caps allow, on
 * loopback. Past a cap a request is answered 503 with Retry-After before it costs memory; the gateway's and
 * orders' memory stays under a bound during the flood; every order accepted (202) ends, and the books balance.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startPlatform, type Platform, type PlatformService } from '../../scripts/lib/platform.ts';
import { booksAtRest, GatewayClient, statusMismatches } from '../../scripts/lib/client.ts';

/** Open connections cost the gateway ~25 MiB per 1,000 (the caps bound requests handled, not connections): see the README. */
const FLOOD = 1500;
const GATEWAY_CAP = 64;
const ORDERS_CAP = 16;
/** What either process may use at most during the flood: the memory limit of their pods in the cluster is 256 MiB. */
const RSS_BOUND_MIB = 256;
const MEASURED = ['gateway', 'orders'] as const satisfies readonly PlatformService[];

let platform: Platform;
let api: GatewayClient;

before(async () => {
  platform = await startPlatform({
    ports: 'free',
    env: {
      // The rate limit well above the flood: this test is about the in-flight caps.
      gateway: { MAX_IN_FLIGHT: String(GATEWAY_CAP), RATE_LIMIT_POINTS: String(10 * FLOOD) },
      orders: { MAX_IN_FLIGHT: String(ORDERS_CAP) },
    },
  });
  api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
});
after(async () => {
  await platform?.stop();
});

/** Resident memory of a platform process, MiB (from /proc: read even while its event loop is busy). */
function rssMiB(service: PlatformService): number {
  const pid = platform.pid(service);
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  assert.ok(line, `VmRSS of ${service} (pid ${pid})`);
  return Number(line[1]) / 1024;
}

interface Answer {
  status: number;
  code?: string;
  retryAfter: string | null;
  orderId?: string;
}

async function post(i: number): Promise<Answer> {
  const res = await fetch(`${platform.gatewayUrl}/api/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${platform.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ customerId: `flood-${i % 50}`, items: [{ sku: i % 2 ? 'sku-2' : 'sku-4', quantity: 1 }] }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json()) as { orderId?: string; error?: { code: string } };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ...(body.orderId ? { orderId: body.orderId } : {}), ...(body.error ? { code: body.error.code } : {}) };
}

test(`${FLOOD} concurrent orders against in-flight caps of ${GATEWAY_CAP} (gateway) and ${ORDERS_CAP} (orders): the rest shed with 503 + Retry-After, memory bounded, every accepted order ends`, async (t) => {
  const baseline = Object.fromEntries(MEASURED.map((s) => [s, rssMiB(s)]));
  const peak = { ...baseline };
  const sampler = setInterval(() => {
    for (const s of MEASURED) peak[s] = Math.max(peak[s]!, rssMiB(s));
  }, 50);
  const t0 = Date.now();
  let answers: Answer[];
  try {
    answers = await Promise.all(Array.from({ length: FLOOD }, (_, i) => post(i)));
  } finally {
    clearInterval(sampler);
  }
  const floodMs = Date.now() - t0;

  const accepted = answers.filter((a) => a.status === 202).map((a) => a.orderId!);
  const shed = answers.filter((a) => a.status === 503);
  const byCode = Object.entries(Object.groupBy(shed, (a) => a.code ?? '?')).map(([code, as]) => `${as!.length} × ${code}`);
  t.diagnostic(`${FLOOD} POSTs in ${floodMs} ms: ${accepted.length} accepted, ${shed.length} shed (${byCode.join(', ')})`);
  t.diagnostic(`RSS MiB before → peak: ${MEASURED.map((s) => `${s} ${baseline[s]!.toFixed(0)} → ${peak[s]!.toFixed(0)}`).join(', ')}`);

  const others = answers.filter((a) => a.status !== 202 && a.status !== 503);
  assert.deepEqual(others, [], 'every answer is 202 or 503');
  assert.ok(shed.length > 0, 'the caps shed some of the flood');
  assert.ok(accepted.length > 0, 'orders were accepted during the flood');
  assert.deepEqual(shed.filter((a) => a.retryAfter === null || !(Number(a.retryAfter) >= 1)), [], 'every shed answer says when to retry');
  for (const s of MEASURED) assert.ok(peak[s]! < RSS_BOUND_MIB, `${s} peaked at ${peak[s]!.toFixed(0)} MiB`);

  const views = [...(await api.waitForOrders(accepted, 120_000)).values()];
  assert.equal(views.length, accepted.length, 'every accepted order is known');
  assert.deepEqual(statusMismatches(views), [], 'every accepted order ended as its saga did');
  assert.deepEqual(views.filter((v) => v.status === 'PENDING' || v.status === 'FAILED'), []);
  assert.deepEqual(await booksAtRest(api, views), [], 'the books balance at rest');
});
