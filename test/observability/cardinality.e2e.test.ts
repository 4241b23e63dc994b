/**
 * Metric cardinality stays bounded: after 1,000 orders through the platform (processes on a real
 * nats-server, some payments failing), every service's /metrics is scraped and
 *  - no metric has a label with more than MAX_VALUES values (over all services together, as Prometheus stores them),
 *  - no label value is one of the order ids or looks like an id (uuid, long hex, long random token, long number),
 *  - every sagamesh_* metric carries exactly the labels of DESIGN "Metrics", with values from the contracts' enums.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Catalogue, MessageOutcomes, Metrics, ReconcileOutcomes, RejectReasons, SagaOutcomes } from '@sagamesh/contracts';
import { PLATFORM_SERVICES, startPlatform, type Platform } from '../../scripts/lib/platform.ts';
import { GatewayClient } from '../../scripts/lib/client.ts';
import { placeOrders, scrape } from './helpers.ts';

const ORDERS = 1000;
const MAX_VALUES = 20;

let platform: Platform;
let api: GatewayClient;
let orderIds: string[] = [];
const logs: string[] = [];
/** metric name → label name → values, over every service. */
const families = new Map<string, Map<string, Set<string>>>();
const texts = new Map<string, string>();

before(async () => {
  platform = await startPlatform({ ports: 'free', onLog: (s, l) => (logs.push(`[${s}] ${l}`), logs.length > 500 && logs.shift()) });
  api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
  await api.putFault({ target: 'payments.charge', failureRate: 0.2, latencyMs: 0, crashAfterCommit: false });
  const skus = Catalogue.map((c) => c.sku);
  orderIds = await placeOrders(api, ORDERS, 16, (i) => ({ customerId: `c-${i}`, items: [{ sku: skus[i % skus.length]!, quantity: 1 }] }));
  await api.waitForOrders(orderIds, 300_000);
  await api.clearFaults();
  // A few reads too, so the read routes are labelled.
  for (const id of orderIds.slice(0, 20)) await api.getOrder(id);
  await api.getOrder('ord-does-not-exist');
  for (const s of PLATFORM_SERVICES) {
    const text = await scrape(platform.ports[s]);
    texts.set(s, text);
    for (const { name, labels } of parseExposition(text)) {
      const family = families.get(name) ?? new Map<string, Set<string>>();
      families.set(name, family);
      for (const [k, v] of Object.entries(labels)) {
        const values = family.get(k) ?? new Set<string>();
        family.set(k, values);
        values.add(v);
      }
    }
  }
});

after(async () => {
  await platform?.stop();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
}

/** The samples of a Prometheus text exposition (0.0.4): `name{a="x",b="y"} value`. Comments skipped. */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels });
  }
  return out;
}

/** What an id looks like: a uuid, a long hex string, or a long token with digits or mixed case (base62 ids). */
function idLike(value: string): string | undefined {
  if (/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.test(value)) return 'a uuid';
  if (/\b[0-9a-f]{12,}\b/i.test(value)) return 'a long hex string';
  for (const token of value.split(/[^A-Za-z0-9_-]+/)) {
    if (token.length >= 16 && (/\d/.test(token) || (/[a-z]/.test(token) && /[A-Z]/.test(token)))) return 'a long random token';
  }
  if (/^\d{5,}$/.test(value)) return 'a long number';
  return undefined;
}
// Bucket bounds and the runtime's version are numbers by design, not ids.
const NUMERIC_LABELS = new Set(['le', 'quantile', 'version', 'major', 'minor', 'patch']);

test(`after ${ORDERS} orders no metric has a label with more than ${MAX_VALUES} values`, (t) => {
  assert.ok(families.size > 20, `scraped ${families.size} metrics`);
  const wide: string[] = [];
  let widest = { what: '', n: 0 };
  for (const [name, labels] of families) {
    for (const [label, values] of labels) {
      if (values.size > MAX_VALUES) wide.push(`${name}{${label}}: ${values.size} values, e.g. ${[...values].slice(0, 5).join(', ')}`);
      if (values.size > widest.n) widest = { what: `${name}{${label}}`, n: values.size };
    }
  }
  t.diagnostic(`${families.size} metrics; the widest label is ${widest.what} with ${widest.n} values`);
  assert.deepEqual(wide, []);
});

test('no label value is an order id or looks like an id', () => {
  // The detector itself recognises the platform's ids, and not its names.
  assert.deepEqual(orderIds.filter((id) => !idLike(id)), [], 'every order id is recognised as an id');
  for (const name of ['builtin.order-fulfillment', 'orchestrator-replies', '/api/orders/:orderId', 'inventory-saga-events']) assert.equal(idLike(name), undefined, name);
  const ids = new Set(orderIds);
  const bad: string[] = [];
  for (const [name, labels] of families) {
    for (const [label, values] of labels) {
      for (const v of values) {
        if (ids.has(v) || orderIds.some((id) => v.includes(id))) bad.push(`${name}{${label}="${v}"}: an order id`);
        if (v.includes(platform.apiKey)) bad.push(`${name}{${label}}: the API key`);
        if (NUMERIC_LABELS.has(label)) continue;
        const what = idLike(v);
        if (what) bad.push(`${name}{${label}="${v}"}: looks like ${what}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

/** DESIGN "Metrics": each metric's labels (histograms add `le`). */
const CONTRACT: Record<string, readonly string[]> = {
  [Metrics.httpRequestsTotal]: ['service', 'route', 'method', 'code'],
  [`${Metrics.httpRequestDurationSeconds}_bucket`]: ['service', 'route', 'method', 'le'],
  [Metrics.sagaStartedTotal]: ['definition'],
  [Metrics.sagaEndedTotal]: ['definition', 'outcome'],
  [`${Metrics.sagaDurationSeconds}_bucket`]: ['definition', 'outcome', 'le'],
  [`${Metrics.sagaStepDurationSeconds}_bucket`]: ['definition', 'step', 'outcome', 'le'],
  [Metrics.sagaStepRetriesTotal]: ['definition', 'step'],
  [Metrics.sagaCompensationsTotal]: ['definition', 'step'],
  [Metrics.sagaInFlight]: ['definition'],
  [Metrics.sagaStuck]: ['definition'],
  [Metrics.messagesHandledTotal]: ['service', 'consumer', 'outcome'],
  [Metrics.messagesRedeliveredTotal]: ['service', 'consumer'],
  [`${Metrics.messageProcessingDurationSeconds}_bucket`]: ['service', 'consumer', 'le'],
  [Metrics.consumerPending]: ['stream', 'consumer'],
  [Metrics.circuitBreakerState]: ['upstream'],
  [Metrics.requestsRejectedTotal]: ['service', 'reason'],
  [Metrics.ordersReconciledTotal]: ['outcome'],
};
const VALUES: Record<string, readonly string[]> = {
  [`${Metrics.sagaEndedTotal}.outcome`]: SagaOutcomes,
  [`${Metrics.sagaDurationSeconds}_bucket.outcome`]: SagaOutcomes,
  [`${Metrics.messagesHandledTotal}.outcome`]: MessageOutcomes,
  [`${Metrics.requestsRejectedTotal}.reason`]: RejectReasons,
  [`${Metrics.ordersReconciledTotal}.outcome`]: ReconcileOutcomes,
  [`${Metrics.httpRequestsTotal}.service`]: PLATFORM_SERVICES,
};

test('every sagamesh_* metric carries exactly its contract labels, with the contracts’ values', () => {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(CONTRACT)) {
    const family = families.get(name);
    // Counters born on first use (e.g. rejections) may be absent; when present they must be right.
    if (!family) continue;
    const have = [...family.keys()].sort();
    if (have.join() !== [...want].sort().join()) problems.push(`${name}: labels {${have.join(', ')}}, contract {${[...want].sort().join(', ')}}`);
  }
  for (const [key, allowed] of Object.entries(VALUES)) {
    const [name, label] = key.split('.') as [string, string];
    for (const v of families.get(name)?.get(label) ?? []) if (!allowed.includes(v)) problems.push(`${name}{${label}="${v}"}: not one of ${allowed.join(', ')}`);
  }
  for (const name of families.keys()) {
    if (!name.startsWith('sagamesh_')) continue;
    const base = name.replace(/_(bucket|count|sum)$/, '');
    if (!Object.values(Metrics).includes(base as (typeof Metrics)[keyof typeof Metrics])) problems.push(`${name}: not in contracts' Metrics`);
  }
  for (const m of [Metrics.httpRequestsTotal, Metrics.sagaStartedTotal, Metrics.sagaEndedTotal, Metrics.messagesHandledTotal, Metrics.consumerPending, Metrics.sagaInFlight]) {
    if (!families.has(m)) problems.push(`${m}: exported by no service`);
  }
  assert.deepEqual(problems, []);
});

test('route labels are route patterns, never raw paths', () => {
  const routes = [...(families.get(Metrics.httpRequestsTotal)?.get('route') ?? [])];
  assert.ok(routes.includes('/api/orders/:orderId'), `routes: ${routes.join(', ')}`);
  for (const r of routes) assert.doesNotMatch(r, /ord-/, `route ${r}`);
});
