/**
 * `make dlq ARGS="list | show SEQ | replay SEQ | discard SEQ [--nats URL]"`: the dead letters (DEAD_LETTERS, subjects
 * `dlq.<original subject>`) — what died, where and why; replay one to its consumer once its cause is fixed.
 * In the cluster: `kubectl -n nats port-forward svc/nats 4222` first, as the admin (NATS_USER=admin, NATS_PASSWORD from .dev/cluster/nats/admin).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { discardDeadLetter, listDeadLetters, replayDeadLetter, showDeadLetter } from '@sagamesh/runtime';

const USAGE = `usage: make dlq ARGS="<command> [--nats URL]"
  list [--limit N]   the dead letters, oldest first: seq, time, subject, consumer, reason
  show SEQ           one dead letter: its headers and body
  replay SEQ         publish it again on the subject it died on (its consumer handles it anew), then remove it
  discard SEQ        remove it
  --nats URL         the NATS server (default nats://127.0.0.1:4222: make dev, or a port-forward to the cluster's)
  NATS_USER, NATS_PASSWORD   who to connect as (default, for a server on this machine: make dev's admin, from .dev/nats/users.json)`;

/**
 * NATS_USER/NATS_PASSWORD, else make dev's admin identity (its passwords are kept in .dev/nats/users.json) when the
 * server is on this machine, else none: make dev's password never goes to a server elsewhere.
 */
function credentials(natsUrl: string): { user?: string; pass?: string } {
  if (process.env.NATS_USER) return { user: process.env.NATS_USER, pass: process.env.NATS_PASSWORD ?? '' };
  const file = path.join(import.meta.dirname, '..', '.dev', 'nats', 'users.json');
  if (!isLoopback(natsUrl) || !existsSync(file)) return {};
  const admin = (JSON.parse(readFileSync(file, 'utf8')) as { admin?: { user: string; pass: string } }).admin;
  return admin ? { user: admin.user, pass: admin.pass } : {};
}

function isLoopback(natsUrl: string): boolean {
  let host: string;
  try {
    host = new URL(natsUrl.includes('://') ? natsUrl : `nats://${natsUrl}`).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { nats: { type: 'string', default: 'nats://127.0.0.1:4222' }, limit: { type: 'string', default: '100' }, help: { type: 'boolean', default: false } } });
  const [command, arg] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const seq = Number(arg);
  if (command !== 'list' && !(Number.isInteger(seq) && seq > 0)) {
    console.error(`${command} needs the dead letter's sequence number (see \`make dlq ARGS=list\`)\n${USAGE}`);
    return 2;
  }
  const nc = await connect({ servers: values.nats, name: 'dlq', ...credentials(values.nats) }).catch((err: unknown) => {
    throw new Error(`cannot reach NATS at ${values.nats} (${(err as Error).message}): is make dev running, or a port-forward to the cluster's NATS?`);
  });
  try {
    const jsm = await jetstreamManager(nc);
    switch (command) {
      case 'list': {
        const { total, deadLetters } = await listDeadLetters(jsm, { limit: Number(values.limit) });
        if (total === 0) console.log('no dead letters');
        else if (deadLetters.length < total) console.log(`the oldest ${deadLetters.length} of ${total} dead letters (--limit N for more)`);
        for (const d of deadLetters) console.log(`${d.seq}\t${d.time}\t${d.subject}\t${d.stream}/${d.consumer}\t${d.reason}`);
        return 0;
      }
      case 'show': {
        const d = await showDeadLetter(jsm, seq);
        if (!d) return notFound(seq);
        console.log(JSON.stringify(d, null, 2));
        return 0;
      }
      case 'replay': {
        const replayed = await replayDeadLetter(jetstream(nc), jsm, seq);
        if (!replayed) return notFound(seq);
        console.log(`replayed dead letter ${seq} on ${replayed.subject}, and removed it`);
        return 0;
      }
      case 'discard':
        if (!(await discardDeadLetter(jsm, seq))) return notFound(seq);
        console.log(`discarded dead letter ${seq}`);
        return 0;
      default:
        console.error(`unknown command "${command}"\n${USAGE}`);
        return 2;
    }
  } finally {
    await nc.close();
  }
}

function notFound(seq: number): number {
  console.error(`no dead letter ${seq} (see \`make dlq ARGS=list\`)`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`dlq: ${(err as Error).message}`);
    process.exit(1);
  },
);
