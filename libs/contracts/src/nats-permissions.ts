/**
 * Identities on the bus: each service, the operator and an admin connect to NATS as their own user, with
 * publish/subscribe permissions derived here from the names in messaging.ts and api.ts. Pure: the same tables
 * render the nats-server config of `make dev` and of the tests (renderNatsAuthorization); the cluster's NATS has no
 * authorization yet.
 *
 * What each grant is for, in nats.js v3 terms (found by running every process against a nats-server with these
 * permissions and reading its "Permissions Violation" lines until none remained):
 * - a JetStream publish (or a KV write, `$KV.<bucket>.<key>`) is a request: the subject, and its ack on the inbox;
 * - a durable pull consumer: consumer create/info of that durable, `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`,
 *   acks/naks/progress on `$JS.ACK.<stream>.<durable>.>`, the dead letter on `dlq.<its filter>`, the stream message
 *   get and the max-deliveries advisory of the dead-letter safety net;
 * - a KV bucket read or watched: stream info, direct/message get, ordered consumers (create, delete, flow control);
 * - every process: `$JS.API.INFO` (the JetStream manager's check) and stream info of the platform streams (it checks
 *   at boot that they exist); its own inbox `_INBOX.<user>.>` (connect with inboxPrefix = inboxPrefixOf(user)); and
 *   `allow_responses`, so that it can answer the requests it receives (engine API, books, products) and nothing else.
 * Nobody but the admin may create, update, delete or purge a stream: the admin provisions streams and buckets before
 * the services start. One exception, on purpose: orders may purge its own read model (`POST /orders/rebuild` drops
 * the view and replays ORDERS into it; the view is a projection that the event store rebuilds).
 */
import { QuerySubjects } from './api.ts';
import { Buckets, Consumers, SagaEndSubjects, Streams, Subjects, type EngineVerb } from './messaging.ts';
import { ParticipantNames, ServiceNames, type ParticipantName, type ServiceName } from './ports.ts';

export type NatsIdentity = ServiceName | 'operator' | 'admin';
/** Every identity, the admin last. */
export const NatsIdentities: readonly NatsIdentity[] = [...ServiceNames, 'operator', 'admin'];
/** The identities whose processes run on the bus (everyone but the admin). */
export const ServiceIdentities: readonly Exclude<NatsIdentity, 'admin'>[] = [...ServiceNames, 'operator'];

export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
  /** May publish to the reply subject of a request it received (one reply each). */
  allowResponses: boolean;
}

/** A process's inbox prefix: its replies arrive on `<prefix>.>`, which only it may subscribe. */
export const inboxPrefixOf = (user: string) => `_INBOX.${user}`;

const kvStream = (bucket: string) => `KV_${bucket}`;

/** The JetStream API subjects sagamesh's processes use. */
export const JsApi = {
  info: '$JS.API.INFO',
  streamInfo: (stream: string) => `$JS.API.STREAM.INFO.${stream}`,
  streamCreate: (stream: string) => `$JS.API.STREAM.CREATE.${stream}`,
  streamUpdate: (stream: string) => `$JS.API.STREAM.UPDATE.${stream}`,
  streamDelete: (stream: string) => `$JS.API.STREAM.DELETE.${stream}`,
  streamPurge: (stream: string) => `$JS.API.STREAM.PURGE.${stream}`,
  msgGet: (stream: string) => `$JS.API.STREAM.MSG.GET.${stream}`,
  msgDelete: (stream: string) => `$JS.API.STREAM.MSG.DELETE.${stream}`,
  directGet: (stream: string) => `$JS.API.DIRECT.GET.${stream}`,
  /** Create or update: `$JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>]`. */
  consumerCreate: (stream: string, name: string) => `$JS.API.CONSUMER.CREATE.${stream}.${name}`,
  /** The older API nats.js uses to create a durable with one filter subject: `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`. */
  durableCreate: (stream: string, durable: string) => `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${durable}`,
  consumerInfo: (stream: string, name: string) => `$JS.API.CONSUMER.INFO.${stream}.${name}`,
  consumerDelete: (stream: string, name: string) => `$JS.API.CONSUMER.DELETE.${stream}.${name}`,
  next: (stream: string, durable: string) => `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
  ack: (stream: string, durable: string) => `$JS.ACK.${stream}.${durable}.>`,
  flowControl: (stream: string) => `$JS.FC.${stream}.>`,
  maxDeliveries: (stream: string, durable: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${durable}`,
} as const;

/** A durable consumer an identity runs: its stream, name and filter subjects (as the service declares it). */
export interface ConsumerGrant {
  stream: string;
  durable: string;
  filters: readonly string[];
}

const participantConsumer = (p: ParticipantName): ConsumerGrant => ({ stream: Streams.commands.name, durable: Consumers.participant(p), filters: [Subjects.commandsOf(p)] });

/** The durable consumers each identity runs. */
export const ConsumerGrants: Readonly<Record<Exclude<NatsIdentity, 'admin'>, readonly ConsumerGrant[]>> = {
  gateway: [],
  orders: [
    { stream: Streams.orders.name, durable: Consumers.ordersProjector, filters: [Subjects.allOrderStream] },
    { stream: Streams.sagaEvents.name, durable: Consumers.ordersSagaEvents, filters: [SagaEndSubjects.endedOf('order')] },
  ],
  orchestrator: [{ stream: Streams.replies.name, durable: Consumers.engineReplies, filters: [Subjects.allReplies] }],
  inventory: [participantConsumer('inventory'), { stream: Streams.sagaEvents.name, durable: Consumers.inventorySagaEvents, filters: [SagaEndSubjects.allEnded] }],
  payments: [participantConsumer('payments')],
  shipping: [participantConsumer('shipping')],
  notifications: [{ stream: Streams.domainEvents.name, durable: Consumers.notifications, filters: [Subjects.domainEvent('order', '>')] }],
  operator: [{ stream: Streams.sagaEvents.name, durable: Consumers.operatorSagaEvents, filters: [Subjects.sagaEventsOf('k8s')] }],
};

interface Grants {
  /** Subjects published (JetStream or core). */
  publish?: readonly string[];
  /** Core subscriptions (queue groups included). */
  subscribe?: readonly string[];
  /** Buckets written (and read). */
  writes?: readonly string[];
  /** Buckets only read or watched. */
  reads?: readonly string[];
  /** Engine verbs requested. */
  engine?: readonly EngineVerb[];
  /** Queries requested (core request/reply). */
  queries?: readonly string[];
  /** Streams whose messages it reads by sequence or through an ordered consumer (beyond its durables). */
  streamReads?: readonly string[];
  /** Extra JetStream API subjects: the exceptions, each said why where it is granted. */
  jsApi?: readonly string[];
}

/** A participant replies to the engine, keeps its ledger in its own bucket, reads the faults and answers its books. */
const participantGrants = (p: ParticipantName): Grants => ({
  publish: [Subjects.allReplies],
  subscribe: [QuerySubjects.books(p)],
  writes: [Buckets[p]],
  reads: [Buckets.faults],
});

/** What each identity does on the bus, in the contracts' names. */
const grantsOf: Readonly<Record<Exclude<NatsIdentity, 'admin'>, Grants>> = {
  gateway: {
    // The explorer follows every progress event live (the stream keeps only each run's latest).
    subscribe: [Subjects.domainEvent('inventory', 'stock_changed'), Subjects.allSagaEvents],
    writes: [Buckets.idempotency, Buckets.faults],
    engine: ['get'],
    queries: [...ParticipantNames.map((p) => QuerySubjects.books(p)), QuerySubjects.books('orders'), QuerySubjects.products],
    // The saga explorer: the runs' recent progress events read once at start, and the dead letters read by sequence.
    // Replaying a dead letter publishes on another identity's subject, so it never runs as the gateway (see its DLQ_NATS_USER).
    streamReads: [Streams.sagaEvents.name, Streams.deadLetters.name],
  },
  orders: {
    publish: [Subjects.allOrderStream, Subjects.domainEvent('order', '>')],
    subscribe: [QuerySubjects.books('orders')],
    writes: [Buckets.orderView],
    engine: ['define', 'start', 'get'],
    // The rebuild replays ORDERS through an ordered consumer, and drops its own read model first.
    streamReads: [Streams.orders.name],
    jsApi: [JsApi.streamPurge(kvStream(Buckets.orderView))],
  },
  orchestrator: {
    publish: [Subjects.allCommands, Subjects.allSagaEvents, SagaEndSubjects.allEnded],
    subscribe: [Subjects.engine('*' as EngineVerb)],
    writes: [Buckets.sagaRuns, Buckets.sagaDefinitions],
  },
  inventory: { ...participantGrants('inventory'), publish: [Subjects.allReplies, Subjects.domainEvent('inventory', '>')], subscribe: [QuerySubjects.books('inventory'), QuerySubjects.products] },
  payments: participantGrants('payments'),
  shipping: participantGrants('shipping'),
  notifications: { writes: [Buckets.notifications] },
  operator: { engine: ['define', 'start', 'cancel', 'get'] },
};

/** The platform streams, by name: every process checks at boot that they exist. */
const platformStreamNames = Object.values(Streams).map((s) => s.name);

function bucketRead(bucket: string): string[] {
  const s = kvStream(bucket);
  return [JsApi.streamInfo(s), JsApi.directGet(s), `${JsApi.directGet(s)}.>`, JsApi.msgGet(s), `$JS.API.CONSUMER.CREATE.${s}`, JsApi.consumerCreate(s, '>'), JsApi.consumerInfo(s, '>'), JsApi.consumerDelete(s, '>'), JsApi.flowControl(s)];
}

function consumerGrant(c: ConsumerGrant): { publish: string[]; subscribe: string[] } {
  return {
    publish: [
      JsApi.consumerCreate(c.stream, c.durable),
      `${JsApi.consumerCreate(c.stream, c.durable)}.>`,
      JsApi.durableCreate(c.stream, c.durable),
      JsApi.consumerInfo(c.stream, c.durable),
      JsApi.next(c.stream, c.durable),
      JsApi.ack(c.stream, c.durable),
      JsApi.msgGet(c.stream),
      ...c.filters.map((f) => Subjects.deadLetter(f)),
    ],
    subscribe: [JsApi.maxDeliveries(c.stream, c.durable)],
  };
}

const uniq = (xs: readonly string[]) => [...new Set(xs)];

/** What no service identity may publish (denied on top of the allow list): stream administration, account and cluster operations. */
const SERVICE_PUBLISH_DENY = ['$JS.API.STREAM.CREATE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.ACCOUNT.>', '$JS.API.META.>', '$JS.API.SERVER.>'];
const PURGE_ANY = JsApi.streamPurge('>');

/** The permissions of one identity. */
export function natsPermissions(identity: NatsIdentity): NatsPermissions {
  if (identity === 'admin') return { publish: { allow: ['>'], deny: [] }, subscribe: { allow: ['>'], deny: [] }, allowResponses: false };
  const g = grantsOf[identity];
  const consumers = ConsumerGrants[identity].map(consumerGrant);
  const publish = [
    ...(g.publish ?? []),
    ...(g.writes ?? []).map((b) => `$KV.${b}.>`),
    ...[...(g.writes ?? []), ...(g.reads ?? [])].flatMap(bucketRead),
    ...(g.engine ?? []).map((v) => Subjects.engine(v)),
    ...(g.queries ?? []),
    ...(g.streamReads ?? []).flatMap((s) => [JsApi.msgGet(s), `$JS.API.CONSUMER.CREATE.${s}`, JsApi.consumerCreate(s, '>'), JsApi.consumerInfo(s, '>'), JsApi.consumerDelete(s, '>'), JsApi.next(s, '*'), JsApi.flowControl(s)]),
    ...(g.jsApi ?? []),
    ...consumers.flatMap((c) => c.publish),
    JsApi.info,
    ...platformStreamNames.map(JsApi.streamInfo),
  ];
  const subscribe = [...(g.subscribe ?? []), ...consumers.flatMap((c) => c.subscribe), `${inboxPrefixOf(identity)}.>`];
  return {
    // Purging is denied too, unless this identity was granted the purge of one stream of its own.
    publish: { allow: uniq(publish), deny: publish.some((s) => s.startsWith(JsApi.streamPurge(''))) ? SERVICE_PUBLISH_DENY : [...SERVICE_PUBLISH_DENY, PURGE_ANY] },
    subscribe: { allow: uniq(subscribe), deny: [] },
    allowResponses: true,
  };
}

/** A user's password in the server config: the text itself (or its bcrypt hash), or the environment variable that holds it. */
export type NatsPasswordRef = { value: string } | { env: string };

export interface NatsUser {
  identity: NatsIdentity;
  /** Default: the identity. */
  user?: string;
  password: NatsPasswordRef;
}

const quote = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(quote).join(', ')}]`;

/**
 * The nats-server config's `authorization` block for these users, each with natsPermissions(identity). Without it
 * (a bare nats-server, as most tests start) everyone may do everything; with it an unauthenticated client is refused.
 */
export function renderNatsAuthorization(users: readonly NatsUser[]): string {
  const lines = ['authorization {', '  users = ['];
  for (const u of users) {
    const p = natsPermissions(u.identity);
    const password = 'env' in u.password ? `$${u.password.env}` : quote(u.password.value);
    const perm = [
      `publish: { allow: ${list(p.publish.allow)}${p.publish.deny.length ? `, deny: ${list(p.publish.deny)}` : ''} }`,
      `subscribe: { allow: ${list(p.subscribe.allow)}${p.subscribe.deny.length ? `, deny: ${list(p.subscribe.deny)}` : ''} }`,
      ...(p.allowResponses ? ['allow_responses: true'] : []),
    ];
    lines.push(`    { user: ${quote(u.user ?? u.identity)}, password: ${password}, permissions: {`, ...perm.map((l) => `      ${l}`), '    } }');
  }
  lines.push('  ]', '}');
  return `${lines.join('\n')}\n`;
}

/** Whether a NATS subject pattern (`*` one token, `>` one or more at the end) matches a subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

const allowed = (rule: { allow: string[]; deny: string[] }, subject: string) =>
  rule.allow.some((a) => subjectMatches(a, subject)) && !rule.deny.some((d) => subjectMatches(d, subject));

/** Whether these permissions let a client publish to `subject` (a reply to a received request aside). */
export const mayPublish = (p: NatsPermissions, subject: string) => allowed(p.publish, subject);
/** Whether these permissions let a client subscribe to `subject` (a concrete subject, or a pattern granted as such). */
export const maySubscribe = (p: NatsPermissions, subject: string) => allowed(p.subscribe, subject);
