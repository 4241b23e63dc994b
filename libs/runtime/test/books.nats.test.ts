import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { KV } from '@nats-io/kv';
import { type Books, type Contribution, createLogger, ensureKv, KvBooks } from '@sagamesh/runtime';
import { useNatsServer } from '@sagamesh/testing';

const nats = useNatsServer();
const log = createLogger('books-test', (process.env.LOG_LEVEL ?? 'silent') as 'silent');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A record of the test's buckets: an amount, open until it is settled (then never written again). */
interface Rec {
  n: number;
  settled: boolean;
}
const contribute = (_key: string, r: Rec): Contribution => ({ books: { count: 1, sum: r.n, open: r.settled ? 0 : 1 }, settled: r.settled });
const json = (r: Rec) => JSON.stringify(r);

/** The books read from every key's current value: what KvBooks must equal. */
async function scanned(kv: KV): Promise<Books> {
  const totals: Books = { count: 0, sum: 0, open: 0 };
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e?.operation !== 'PUT') continue;
    for (const [k, v] of Object.entries(contribute(key, e.json<Rec>()).books)) totals[k]! += v;
  }
  return totals;
}
const normal = (b: Books): Books => ({ count: b.count ?? 0, sum: b.sum ?? 0, open: b.open ?? 0 });

/** Opens, then settles, `count` keys from `from` on, `inFlight` at a time (as a ledger or the read model writes them). */
async function openAndSettle(kv: KV, from: number, count: number, inFlight = 200): Promise<void> {
  for (let i = from; i < from + count; i += inFlight) {
    await Promise.all(
      Array.from({ length: Math.min(inFlight, from + count - i) }, async (_, j) => {
        const key = `k${i + j}`;
        const rev = await kv.create(key, json({ n: i + j, settled: false }));
        await kv.update(key, json({ n: 2 * (i + j), settled: true }), rev);
      }),
    );
  }
}

function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

test('the books remember only open records: their memory does not grow with the records, the totals stay exact', async () => {
  const kv = await ensureKv(nats.js, 'books-bound');
  const books = new KvBooks<Rec>(kv, 'books-bound', contribute, log);
  const n = 2000;
  await openAndSettle(kv, 0, n);
  assert.deepEqual(normal(await books.totals()), await scanned(kv));
  assert.equal(books.remembered, 0);

  // Ten times as many, while the watch runs, in five parts: the heap after each (the first part warms the client up).
  const heap: number[] = [];
  for (let part = 0; part < 5; part++) {
    await openAndSettle(kv, n + part * 2 * n, 2 * n);
    await books.totals();
    assert.equal(books.remembered, 0, 'every record settled: nothing remembered');
    heap.push(heapMiB());
  }
  for (let i = 0; i < 50; i++) await kv.create(`open${i}`, json({ n: i, settled: false }));
  const totals = normal(await books.totals());
  assert.deepEqual(totals, await scanned(kv));
  assert.deepEqual(totals, { count: 11 * n + 50, sum: 11 * n * (11 * n - 1) + 49 * 25, open: 50 });
  assert.equal(books.remembered, 50, 'it remembers the open records only');
  // Remembering every key (as the books did before) grew the heap ~1.2 MiB over these 8 n keys; now it stays flat.
  const grown = heap.at(-1)! - heap[1]!;
  console.log(`books heap after each ${2 * n} records (MiB): ${heap.map((h) => h.toFixed(2)).join(', ')}; grown ${grown.toFixed(2)} over the last ${8 * n}`);
  assert.ok(grown < 0.5, `heap grew ${grown.toFixed(2)} MiB over ${8 * n} records`);

  // A reader started now reads the same from the bucket, remembering as little.
  const fresh = new KvBooks<Rec>(kv, 'books-bound', contribute, log);
  assert.deepEqual(normal(await fresh.totals()), totals);
  assert.equal(fresh.remembered, 50);
  fresh.stop();
  books.stop();
});

test('books started while records are written (revisions replaced before the watch reaches them) stay exact', async () => {
  const kv = await ensureKv(nats.js, 'books-race');
  await openAndSettle(kv, 0, 300);
  // Records that move through several open revisions before they settle, written while each reader starts.
  let next = 1000;
  const churn = async (rounds: number) => {
    for (let r = 0; r < rounds; r++) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const key = `c${next++}`;
          let rev = await kv.create(key, json({ n: 1, settled: false }));
          for (let step = 2; step <= 4; step++) rev = await kv.update(key, json({ n: step, settled: step === 4 }), rev);
        }),
      );
    }
  };
  for (let round = 0; round < 8; round++) {
    const books = new KvBooks<Rec>(kv, 'books-race', contribute, log);
    const writing = churn(10);
    // Several totals() while the writes go on: the watch starts under them.
    const during = [books.totals(), new Promise((r) => setTimeout(r, 5)).then(() => books.totals())];
    await Promise.all([writing, ...during]);
    assert.deepEqual(normal(await books.totals()), await scanned(kv), `round ${round}`);
    assert.equal(books.remembered, 0, 'every record settled: nothing remembered');
    books.stop();
  }
});

test('a purge seen by another reader, or a deleted settled record, makes the books read the bucket again', async () => {
  const kv = await ensureKv(nats.js, 'books-purge');
  const other = new KvBooks<Rec>(kv, 'books-purge', contribute, log);
  await openAndSettle(kv, 0, 20);
  await kv.create('open', json({ n: 5, settled: false }));
  assert.deepEqual(normal(await other.totals()), await scanned(kv));

  // Purged and written again (as orders' rebuild does) without telling this reader.
  await nats.jsm.streams.purge('KV_books-purge');
  await openAndSettle(kv, 0, 10);
  assert.deepEqual(normal(await other.totals()), await scanned(kv));
  assert.deepEqual(normal(await other.totals()), { count: 10, sum: 90, open: 0 });

  await kv.delete('k3');
  assert.deepEqual(normal(await other.totals()), await scanned(kv));
  assert.equal((await other.totals()).count, 9);
  other.stop();
});
