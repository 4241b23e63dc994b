// The saga explorer's routes: the page under /ui/, who the key is, one run's timeline, the live list, the dead letters.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Request, type Response } from 'express';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { ExplorerPaths, isValidId, type SagaDetail, type SessionView } from '@sagamesh/contracts';
import { HttpError, isPermissionDenied, listDeadLetters, replayDeadLetter, type Logger } from '@sagamesh/runtime';
import { mayRead, type Caller } from '../auth.ts';
import { publicView } from '../order-view.ts';
import type { EngineProgress, OrdersClient } from '../upstreams.ts';
import type { RunFeed } from './feed.ts';
import type { RunIndex } from './run-index.ts';
import { RunStream, type RunStreamLimits } from './run-stream.ts';

export interface ExplorerDeps {
  log: Logger;
  index: RunIndex;
  /** Followed while a live list is open. */
  feed: Pick<RunFeed, 'watch'>;
  streamLimits: RunStreamLimits;
  uiDir: string;
  traceUrlTemplate: string;
  faultInjection: boolean;
  /** Reads DEAD_LETTERS (the gateway's own identity may). */
  jsm: JetStreamManager;
  /** Replays dead letters: DLQ_NATS_USER's connection, or the gateway's own. */
  replay: { js: JetStreamClient; jsm: JetStreamManager };
  /** The live-list streams open now (ended on shutdown, or the HTTP server would wait for them). */
  streams: Set<Response>;
}

const DEAD_LETTER_PAGE = { default: 50, max: 200 };
const callerOf = (res: Response) => res.locals.caller as Caller;

/**
 * Mounts the explorer on a router where `/api` and `/admin` are already authenticated (and `/admin` admin-only);
 * needs the engine and orders clients of the other routes.
 */
export function mountExplorer(app: express.Router, d: ExplorerDeps, upstreams: { engine: EngineProgress; orders: OrdersClient }): void {
  // The page holds no data and needs no key: it asks for the key and sends it with every call.
  if (existsSync(path.join(d.uiDir, 'index.html'))) {
    app.use(ExplorerPaths.ui, express.static(d.uiDir, { index: 'index.html', fallthrough: true }));
    app.get(['/', '/ui'], (_req, res) => res.redirect(302, ExplorerPaths.ui));
  } else {
    d.log.warn({ uiDir: d.uiDir }, 'the saga explorer is not built: /ui/ answers 404 (npm run build -w ui)');
    app.get(['/ui', '/ui/*path'], () => {
      throw new HttpError(404, 'not_found', `the saga explorer is not built in this deployment (no ${path.join(d.uiDir, 'index.html')}): npm run build -w ui`);
    });
  }

  app.get(ExplorerPaths.session, (_req: Request, res: Response) => {
    const { role, id } = callerOf(res);
    res.json({ role, id, faultInjection: d.faultInjection } satisfies SessionView);
  });

  app.get('/api/sagas/:runId', async (req: Request, res: Response) => {
    const runId = String(req.params.runId);
    if (!isValidId(runId)) throw new HttpError(400, 'invalid_request', 'runId: use 1-128 characters of A-Z, a-z, 0-9, _ and -');
    const caller = callerOf(res);
    const seen = d.index.get(runId);
    const notFound = () => new HttpError(404, 'not_found', `no saga ${runId}`);
    let engineDown = false;
    const current = await upstreams.engine.get(runId).catch((err: unknown) => {
      d.log.warn({ err, runId }, 'saga explorer: engine unavailable, answering with the last view seen');
      engineDown = true;
      return undefined;
    });
    const run = current ?? seen?.run;
    if (!run) throw notFound();
    // A customer sees the runs of orders it placed, and nothing else (answered like a run that does not exist).
    const order = run.origin === 'order' ? await upstreams.orders.get(run.runId) : undefined;
    if (caller.role !== 'admin' && !(order && mayRead(caller, order.owner))) throw notFound();
    const detail: SagaDetail = { run, events: seen?.events ?? [], eventsComplete: seen?.complete ?? false };
    if (order) detail.order = publicView(order, run);
    if (engineDown) detail.degraded = ['engine'];
    if (d.traceUrlTemplate && run.traceId) detail.traceUrl = d.traceUrlTemplate.replaceAll('{traceId}', encodeURIComponent(run.traceId));
    res.json(detail);
  });

  app.get(ExplorerPaths.stream, (req: Request, res: Response) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const unwatch = d.feed.watch();
    const stream = new RunStream(d.index, res, d.streamLimits);
    d.streams.add(res);
    d.log.debug({ caller: callerOf(res).id, streams: d.streams.size }, 'live list stream opened');
    req.once('close', () => {
      stream.close();
      d.streams.delete(res);
      unwatch();
    });
  });

  app.get(ExplorerPaths.deadLetters, async (req: Request, res: Response) => {
    const raw = req.query.limit ?? String(DEAD_LETTER_PAGE.default);
    const limit = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(limit) || limit < 1 || limit > DEAD_LETTER_PAGE.max) {
      throw new HttpError(400, 'invalid_request', `limit: an integer from 1 to ${DEAD_LETTER_PAGE.max}`);
    }
    res.json(await storeRead(() => listDeadLetters(d.jsm, { limit, newestFirst: true })));
  });

  app.post('/admin/dead-letters/:seq/replay', async (req: Request, res: Response) => {
    const seq = Number(req.params.seq);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new HttpError(400, 'invalid_request', 'seq: the dead letter\'s sequence number, a positive integer');
    let replayed;
    try {
      replayed = await replayDeadLetter(d.replay.js, d.replay.jsm, seq);
    } catch (err) {
      if (isPermissionDenied(err)) {
        throw new HttpError(403, 'replay_not_permitted', 'this gateway may not publish on the subject the message died on: give it DLQ_NATS_USER/DLQ_NATS_PASSWORD of an identity that may, or use make dlq', { cause: err });
      }
      throw new HttpError(503, 'store_unavailable', 'the dead letters cannot be reached right now; retry later', { cause: err });
    }
    if (!replayed) throw new HttpError(404, 'not_found', `no dead letter ${seq}`);
    d.log.info({ seq, subject: replayed.subject, caller: callerOf(res).id }, 'dead letter replayed');
    res.json(replayed);
  });
}

async function storeRead<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new HttpError(503, 'store_unavailable', 'the dead letters cannot be reached right now; retry later', { cause: err });
  }
}
