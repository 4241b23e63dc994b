// The gateway's API as the page calls it: the key in the Authorization header of every call, never in a URL.
import { ExplorerEvents, ExplorerPaths } from '@sagamesh/contracts/explorer';
import type { DeadLetterView, Fault, PlaceOrderRequest, PlaceOrderResponse, Product, RunDelta, RunSnapshot, SagaDetail, SessionView } from '@sagamesh/contracts';
import { EventSource } from 'eventsource';

const KEY_ITEM = 'sagamesh.apiKey';
/** The key lives in this tab's session only: gone when the tab closes, never in the URL or a cookie. */
export const savedKey = () => sessionStorage.getItem(KEY_ITEM) ?? undefined;
export const saveKey = (key: string) => sessionStorage.setItem(KEY_ITEM, key);
export const forgetKey = () => sessionStorage.removeItem(KEY_ITEM);

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class Api {
  readonly #key: string;
  constructor(key: string) {
    this.#key = key;
  }

  async #call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${this.#key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status === 204) return undefined as T;
    const json = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
    if (!res.ok) throw new ApiError(res.status, json?.error?.message ?? `${method} ${path} answered ${res.status}`);
    return json as T;
  }

  session = () => this.#call<SessionView>('GET', ExplorerPaths.session);
  products = () => this.#call<Product[]>('GET', '/api/products');
  placeOrder = (order: PlaceOrderRequest) => this.#call<PlaceOrderResponse>('POST', '/api/orders', order, { 'Idempotency-Key': crypto.randomUUID() });
  saga = (runId: string) => this.#call<SagaDetail>('GET', ExplorerPaths.saga(runId));
  faults = () => this.#call<Fault[]>('GET', '/admin/faults');
  putFault = (f: Fault) => this.#call<Fault>('PUT', '/admin/faults', f);
  clearFaults = () => this.#call<void>('DELETE', '/admin/faults');
  deadLetters = () => this.#call<{ total: number; deadLetters: DeadLetterView[] }>('GET', ExplorerPaths.deadLetters);
  replay = (seq: number) => this.#call<DeadLetterView>('POST', ExplorerPaths.replay(seq));

  /**
   * The live list: server-sent events over fetch, because the browser's EventSource cannot send the Authorization
   * header. The eventsource package reconnects by itself; every (re)connection starts with a snapshot.
   */
  runs(on: { snapshot: (s: RunSnapshot) => void; runs: (d: RunDelta) => void; state: (connected: boolean, error?: string) => void }): () => void {
    const key = this.#key;
    const es = new EventSource(ExplorerPaths.stream, {
      fetch: (url, init) => fetch(url, { ...init, headers: { ...init.headers, Authorization: `Bearer ${key}` } }),
    });
    es.addEventListener(ExplorerEvents.snapshot, (e) => on.snapshot(JSON.parse(e.data) as RunSnapshot));
    es.addEventListener(ExplorerEvents.runs, (e) => on.runs(JSON.parse(e.data) as RunDelta));
    es.addEventListener('open', () => on.state(true));
    es.addEventListener('error', (e) => on.state(false, e.message ?? (e.code ? `HTTP ${e.code}` : undefined)));
    return () => es.close();
  }
}
