/** Shared by the observability tests: Prometheus' HTTP API, reading /metrics, a paced load. */
import { randomUUID } from 'node:crypto';
import { waitFor } from '@sagamesh/testing';
import { ApiError, type GatewayClient } from '../../scripts/lib/client.ts';
import type { PlaceOrderRequest } from '@sagamesh/contracts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Series {
  metric: Record<string, string>;
  values?: [number, string][];
  value?: [number, string];
}

export class PromQueryError extends Error {
  constructor(expr: string, detail: string) {
    super(`Prometheus rejected the query: ${detail}\n  ${expr}`);
    this.name = 'PromQueryError';
  }
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`${body.errorType ?? res.status}: ${body.error ?? 'unknown error'}`);
  return body.data;
}

/** A range query, like a Grafana time-series panel runs. */
export async function queryRange(promUrl: string, expr: string, startMs: number, endMs: number, stepS: number): Promise<Series[]> {
  const params = new URLSearchParams({ query: expr, start: String(startMs / 1000), end: String(endMs / 1000), step: String(stepS) });
  try {
    return (await api<{ result: Series[] }>(`${promUrl}/api/v1/query_range?${params}`)).result;
  } catch (err) {
    throw new PromQueryError(expr, (err as Error).message);
  }
}

export async function queryInstant(promUrl: string, expr: string): Promise<Series[]> {
  try {
    return (await api<{ result: Series[] }>(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`)).result;
  } catch (err) {
    throw new PromQueryError(expr, (err as Error).message);
  }
}

/** Values of a label over the series matching `match` (what Grafana's label_values(match, label) lists). */
export async function labelValues(promUrl: string, label: string, match: string): Promise<string[]> {
  return await api<string[]>(`${promUrl}/api/v1/label/${encodeURIComponent(label)}/values?${new URLSearchParams({ 'match[]': match })}`);
}

export interface RuleState {
  name: string;
  type: 'alerting' | 'recording';
  query: string;
  health: string;
  lastError?: string;
  state?: string;
  alerts?: { labels: Record<string, string>; state: string }[];
}

export async function rules(promUrl: string): Promise<RuleState[]> {
  const data = await api<{ groups: { rules: RuleState[] }[] }>(`${promUrl}/api/v1/rules`);
  return data.groups.flatMap((g) => g.rules);
}

/** Waits until every target has been scraped successfully at least once. */
export async function waitForTargetsUp(promUrl: string, count: number, timeoutMs: number): Promise<void> {
  const allUp = async () => {
    const data = await api<{ activeTargets: { health: string; scrapeUrl: string; lastError: string }[] }>(`${promUrl}/api/v1/targets`);
    const up = data.activeTargets.filter((t) => t.health === 'up').length;
    // Thrown, so waitFor's timeout error says which targets are down.
    if (up < count) throw new Error(`${up} of ${count} up: ${data.activeTargets.map((t) => `${t.scrapeUrl} ${t.health} ${t.lastError}`).join('; ')}`);
    return true;
  };
  await waitFor(allUp, { timeoutMs, intervalMs: 500, what: `${count} Prometheus targets up` });
}

/** True when the series has at least one finite sample (NaN is "no data" on a panel). */
export function hasFiniteSample(s: Series): boolean {
  const samples = s.values ?? (s.value ? [s.value] : []);
  return samples.some(([, v]) => Number.isFinite(Number(v)));
}

/** Places `count` orders with at most `concurrency` in flight; a 429 waits 250 ms and tries again. */
export async function placeOrders(api: GatewayClient, count: number, concurrency: number, order: (i: number) => PlaceOrderRequest): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const key = randomUUID(); // the same key on a retry: never two orders for one
      for (;;) {
        try {
          ids[i] = await api.placeOrder(order(i), key);
          break;
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 429) throw err;
          await sleep(250);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

/** Reads one service's /metrics text. */
export async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET :${port}/metrics → ${res.status}`);
  return await res.text();
}

/** Sum of the samples of `metric` in a /metrics text whose labels include all of `labels`. */
export function sampleSum(text: string, metric: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
