/**
 * coalesceWrites on a real nats-server: what one event-loop turn sends leaves in one socket write, whatever the
 * microtask checkpoints in between (nats.js alone writes once per checkpoint), every message arrives in order, and a
 * full buffer or an explicit flush still goes out at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type NatsServer, startNatsServer, waitFor } from '@sagamesh/testing';
import { coalesceWrites, connectNats, createLogger } from '../src/index.ts';

let server: NatsServer;
before(async () => {
  server = await startNatsServer({ jetstream: false });
});
after(async () => {
  await server?.stop();
});

/** Counts the transport's writes of `nc`. */
function countWrites(nc: NatsConnection): { writes: number } {
  const transport = (nc as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol.transport;
  const counter = { writes: 0 };
  const send = transport.send.bind(transport);
  transport.send = (frame) => {
    counter.writes++;
    send(frame);
  };
  return counter;
}

/** Publishes `n` messages in one turn, a microtask checkpoint between each (as a consumer handling a batch has). */
async function publishAcrossCheckpoints(nc: NatsConnection, subject: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    nc.publish(subject, String(i));
    await Promise.resolve();
  }
}

describe('coalesceWrites', () => {
  it('sends a turn\'s publishes in one write where nats.js alone writes after every checkpoint; all arrive, in order', async () => {
    const log = createLogger('test', 'silent');
    const coalesced = await connectNats({ servers: server.url, name: 'coalesced', log });
    const plain = await connect({ servers: server.url });
    const reader = await connect({ servers: server.url });
    try {
      const got: string[] = [];
      reader.subscribe('w.>', { callback: (_e, m) => void got.push(`${m.subject}:${m.string()}`) });
      await reader.flush();

      const plainWrites = countWrites(plain);
      await publishAcrossCheckpoints(plain, 'w.plain', 50);
      await nextTurn();
      assert.ok(plainWrites.writes >= 25, `nats.js alone: ${plainWrites.writes} writes for 50 messages`);

      const writes = countWrites(coalesced);
      await publishAcrossCheckpoints(coalesced, 'w.coalesced', 50);
      assert.equal(writes.writes, 0, 'nothing leaves before the turn ends');
      await nextTurn();
      assert.equal(writes.writes, 1, 'one write for the turn');

      await waitFor(async () => got.length === 100, { what: 'all 100 messages' });
      const inOrder = (s: string) => got.filter((g) => g.startsWith(`w.${s}:`)).map((g) => Number(g.split(':')[1]));
      assert.deepEqual(inOrder('coalesced'), [...Array(50).keys()]);
      assert.deepEqual(inOrder('plain'), [...Array(50).keys()]);

      // flush() (a PING) goes out at once, taking what waits with it; a full buffer goes out at once too.
      coalesced.publish('w.coalesced', 'before-flush');
      await coalesced.flush();
      assert.equal(writes.writes, 2);
      const big = new Uint8Array(300 * 1024);
      coalesced.publish('w.big', big);
      assert.equal(writes.writes, 3, 'a buffer past its limit is written without waiting for the turn');
      // A subscription goes out at the checkpoint, as nats.js does: whoever it serves is reachable once its owner said it is ready.
      coalesced.subscribe('w.sub');
      await Promise.resolve();
      assert.equal(writes.writes, 4, 'a subscription is not held to the end of the turn');
    } finally {
      await Promise.all([coalesced.close(), plain.close(), reader.close()]);
    }
  });

  it('refuses a connection without the nats.js 3.x internals it replaces, saying what to do', () => {
    assert.throws(() => coalesceWrites({} as NatsConnection), /no ProtocolHandler\.sendCommand.*remove coalesceWrites or adapt it/);
  });
});
