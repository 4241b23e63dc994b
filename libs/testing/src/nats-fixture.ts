/** A nats-server with a client connection: per test file (`useNatsServer`) or on demand (`startNats`). */
import { after, before } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { declarePlatformStreams } from '@sagamesh/runtime';
import type { NatsCredentials } from './nats-auth.ts';
import { type NatsServer, startNatsServer, type StartNatsServerOptions } from './nats-server.ts';

export interface Nats {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Starts a nats-server (JetStream on) and connects to it; `stop` closes the connection, then stops the server. */
export async function startNats(opts: StartNatsServerOptions = {}): Promise<Nats & { stop(): Promise<void> }> {
  const server = await startNatsServer(opts);
  // With authorization, the fixture's own connection is the admin's.
  const nc = await connect({ servers: server.url, ...server.users?.admin });
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    async stop() {
      await nc.close();
      await server.stop();
    },
  };
}

/**
 * A Nats whose fields are read from `get()` at each access (one that exists only once a hook has started it),
 * with `extra`'s members besides.
 */
export function lateNats<E extends object>(get: () => Nats | undefined, owner: string, extra: E): Readonly<Nats> & NoInfer<E> {
  const started = (): Nats => {
    const nats = get();
    if (!nats) throw new Error(`${owner}: the nats-server starts in the before hook; use it from a test`);
    return nats;
  };
  return {
    get server() {
      return started().server;
    },
    get nc() {
      return started().nc;
    },
    get js() {
      return started().js;
    },
    get jsm() {
      return started().jsm;
    },
    ...extra,
  };
}

export interface NatsFixture extends Readonly<Nats> {
  /** Another connection to the server (e.g. a second process's view), as `as` (default: the admin, with `auth`); closed with the fixture. */
  connect(as?: NatsCredentials): Promise<NatsConnection>;
}

/**
 * The nats-server of one test file: started in a `before` hook registered by this call, stopped in an `after`
 * hook. Call it at the top of the file; its fields can be read from the tests on (not from another top-level
 * `before`: node:test does not wait for this one before starting that). `platformStreams` declares the platform's
 * streams once the server is up.
 */
export function useNatsServer(opts: StartNatsServerOptions & { platformStreams?: boolean } = {}): NatsFixture {
  let nats: Awaited<ReturnType<typeof startNats>> | undefined;
  const extra: NatsConnection[] = [];
  before(async () => {
    nats = await startNats(opts);
    if (opts.platformStreams) await declarePlatformStreams(nats.jsm);
  });
  after(async () => {
    for (const nc of extra) await nc.close();
    await nats?.stop();
  });
  const fixture: NatsFixture = lateNats(() => nats, 'useNatsServer', {
    async connect(as = fixture.server.users?.admin) {
      const nc = await connect({ servers: fixture.server.url, ...as });
      extra.push(nc);
      return nc;
    },
  });
  return fixture;
}
