import { QuerySubjects } from '@sagamesh/contracts';
import { answerQueries, type Books, type BootConfig, bootService, openBucket, KvBooks, type ServiceContext, type Started } from '@sagamesh/runtime';
import { ledgerContribution, StepLedger, type StepRecord } from './ledger.ts';
import type { CommandHandler } from './participant-handlers.ts';
import { runParticipant, type ParticipantOptions, type ParticipantSeams } from './participant.ts';

/** A participant service's config: CommonConfig + PORT, its commands' concurrency and AckWait. */
export interface ParticipantServiceConfig extends BootConfig {
  CONCURRENCY: number;
  COMMAND_ACK_WAIT_MS: number;
  FAULT_INJECTION: boolean;
}

/** runParticipant's options for a booted participant service: its context, its config, its commands. */
export function participantOptions(ctx: ServiceContext, config: ParticipantServiceConfig, commands: Record<string, CommandHandler>, seams: ParticipantSeams = {}): ParticipantOptions {
  const { service, nc, js, publisher, jsm, log, metrics } = ctx;
  return {
    service,
    nc,
    js,
    publisher,
    jsm,
    log,
    metrics,
    commands,
    concurrency: config.CONCURRENCY,
    ackWaitMs: config.COMMAND_ACK_WAIT_MS,
    replicas: config.JETSTREAM_REPLICAS,
    faultInjection: config.FAULT_INJECTION,
    ...seams,
  };
}

export interface LedgerParticipantSpec<D> {
  /** Its KV bucket: the step ledger (one record per step key) that its books sum. */
  bucket: string;
  commands: (ledger: StepLedger<D>) => Record<string, CommandHandler>;
  /** The books of one step (its action's and compensation's effects); see ledgerContribution. */
  books: (rec: StepRecord<D>) => Books;
  /** The answer to the service's books query (QuerySubjects.books), from the books' totals. */
  booksReply: (totals: Books) => unknown;
}

/**
 * A saga participant whose state is a StepLedger in one KV bucket, with books (a KvBooks of that
 * bucket) answering its books query (QuerySubjects.books(service)): payments and shipping.
 */
export function startLedgerParticipant<D>(
  service: string,
  config: ParticipantServiceConfig,
  spec: LedgerParticipantSpec<D>,
  seams: ParticipantSeams = {},
): Promise<Started> {
  return bootService(service, config, async (ctx) => {
    const { log, shutdown, nc, js, publisher } = ctx;
    const kv = await openBucket(js, spec.bucket, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB });

    const books = new KvBooks(kv, spec.bucket, ledgerContribution(spec.books), log);
    shutdown.onShutdown(() => books.stop(), 'books');
    const booksQuery = answerQueries(nc, QuerySubjects.books(service), service, log, async () => spec.booksReply(await books.totals()));
    shutdown.onShutdown(() => booksQuery.drain(), 'queries');

    const participant = await runParticipant(participantOptions(ctx, config, spec.commands(new StepLedger<D>(kv, { publisher, bucket: spec.bucket })), seams));
    shutdown.onShutdown(() => participant.stop(), 'commands');
    return { ready: () => participant.ready() };
  });
}
