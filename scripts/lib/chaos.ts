/**
 * The chaos run (`npm run chaos`): N orders under step faults while every process of the platform is killed with
 * SIGKILL in turn — each service, then the nats-server (restarted by the supervisor on the same store) — then, at
 * quiescence, the checks: every saga ended, every order's status matches its run, no reservation left, charged −
 * refunded = confirmed total, one shipment per confirmed order, no dead letter. Clients retry with their
 * Idempotency-Key, as a client of this API should, so a killed gateway costs retries, never a second order.
 * Each client waits for its order's outcome before placing the next (a closed loop: `inFlight` sagas at most). Placing
 * open-loop instead, as fast as the gateway accepts (a 202 is quick), queues thousands of commands ahead of the
 * participants and most sagas then end CANCELLED by step timeouts: an overload test, not this one.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pRetry from 'p-retry';
import { Streams, type OrderView } from '@sagamesh/contracts';
import { ApiError, auditViolations, GatewayClient, statusMismatches } from './client.ts';
import { PLATFORM_SERVICES, startPlatform, type PlatformService } from './platform.ts';

export interface ChaosOptions {
  readonly orders: number;
  /** Orders in flight at once: each client places one, waits until its saga ended, then places the next. */
  readonly inFlight: number;
  /** Failure rate injected on every step's action. */
  readonly failureRate: number;
  readonly onProgress?: (line: string) => void;
}

export interface ChaosReport {
  readonly orders: number;
  readonly kills: readonly string[];
  readonly clientRetries: number;
  readonly outcomes: Readonly<Record<string, number>>;
  /** Why orders were cancelled, most frequent first (the reason's text up to its first digit, so ids do not split it). */
  readonly cancelReasons: Readonly<Record<string, number>>;
  readonly quiescenceSeconds: number;
  readonly totalSeconds: number;
  readonly deadLetters: number;
  /** Everything that does not hold at rest (empty when the run passed). */
  readonly violations: readonly string[];
}

const ACTIONS = ['inventory.reserve', 'payments.charge', 'shipping.create'];
const SKUS = ['sku-1', 'sku-2', 'sku-3', 'sku-4'];

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const say = o.onProgress ?? (() => {});
  const started = Date.now();
  const platform = await startPlatform({ ports: 'free' });
  try {
    await platform.waitReady(90_000);
    const api = new GatewayClient(platform.gatewayUrl, platform.apiKey);
    for (const target of ACTIONS) await api.putFault({ target, failureRate: o.failureRate, latencyMs: 0, crashAfterCommit: false });

    // Each process killed once, spread over the run; the nats-server last (the supervisor restarts it on its store).
    const victims: (PlatformService | 'nats-server')[] = [...PLATFORM_SERVICES, 'nats-server'];
    const killAt = victims.map((_, i) => Math.floor(((i + 1) * o.orders) / (victims.length + 1)));
    const kills: string[] = [];
    let retries = 0;
    const ids: string[] = new Array(o.orders);
    let next = 0;
    const place = async (i: number) => {
      const key = `chaos-${randomUUID()}`;
      const order = { customerId: `chaos-${i % 97}`, items: [{ sku: SKUS[i % SKUS.length]!, quantity: 1 + (i % 3) }] };
      ids[i] = await pRetry(() => api.placeOrder(order, key), {
        retries: 30,
        minTimeout: 100,
        maxTimeout: 2000,
        // The same key again is safe: a retry returns the order the first attempt placed. A 4xx is final.
        shouldRetry: ({ error }) => !(error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429),
        onFailedAttempt: () => void retries++,
      });
    };
    const worker = async () => {
      for (let i = next++; i < o.orders; i = next++) {
        while (kills.length < victims.length && i >= killAt[kills.length]!) {
          const victim = victims[kills.length]!;
          kills.push(victim);
          platform.kill(victim);
          say(`order ${i}: SIGKILL ${victim}`);
        }
        await place(i);
        await api.waitForOrders([ids[i]!], 600_000);
        if ((i + 1) % 500 === 0) say(`${i + 1} of ${o.orders} orders placed and ended (${retries} client retries so far)`);
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
    const placedAt = Date.now();
    await api.clearFaults();
    say(`all ${o.orders} orders placed and ended in ${Math.round((placedAt - started) / 1000)} s; waiting for quiescence`);

    const views = [...(await api.waitForOrders(ids, 600_000, (done, total) => done % 1000 === 0 && say(`${done} of ${total} orders ended`))).values()];
    let violations: string[] = [];
    for (let i = 0; i < 240; i++) {
      violations = [...statusMismatches(views), ...auditViolations(await api.audit(), views)];
      if (violations.length === 0) break;
      await sleep(500);
    }
    const quiescenceSeconds = (Date.now() - placedAt) / 1000;
    const nc = await connect({ servers: platform.natsUrl, ...platform.natsAdmin });
    const deadLetters = (await (await jetstreamManager(nc)).streams.info(Streams.deadLetters.name)).state.messages;
    await nc.close();
    if (deadLetters > 0) violations.push(`${deadLetters} dead letter(s): make dlq ARGS=list shows them`);
    const outcomes: Record<string, number> = {};
    const reasons = new Map<string, number>();
    for (const v of views as OrderView[]) {
      outcomes[v.status] = (outcomes[v.status] ?? 0) + 1;
      if (v.status === 'CANCELLED') {
        const reason = (v.reason ?? 'none given').split(/\d/)[0]!.trim();
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }
    const cancelReasons = Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 8));
    return { orders: o.orders, kills, clientRetries: retries, outcomes, cancelReasons, quiescenceSeconds, totalSeconds: (Date.now() - started) / 1000, deadLetters, violations };
  } finally {
    await platform.stop();
  }
}
