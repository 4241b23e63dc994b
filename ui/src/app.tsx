import { Fragment } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { DeadLetterView, Fault, ParticipantCommands, Product, RunOrigin, SagaDetail, SagaPhase, SessionView } from '@sagamesh/contracts';
import { Api, ApiError, forgetKey, saveKey, savedKey } from './api.ts';
import { definitionsOf, LIST_PHASES, ORIGINS, pageOf, phaseCounts, RunModel, type RunFilter } from './model/runs.ts';
import { buildTimeline, type TimelineEntry } from './model/timeline.ts';
import { outcomeLook, phaseLook, type Look } from './status.ts';

const PAGE_SIZE = 25;
/** The list redraws at most this often, however fast the runs change. */
const RENDER_MS = 300;
type Target = { [P in keyof typeof ParticipantCommands]: `${P}.${(typeof ParticipantCommands)[P][number]}` }[keyof typeof ParticipantCommands];
const FAULT_TARGETS = ['inventory.reserve', 'payments.charge', 'shipping.create', 'inventory.release', 'payments.refund', 'shipping.cancel'] as const satisfies readonly Target[];

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const duration = (ms?: number) => (ms === undefined ? '' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`);
const time = (iso?: string) => (iso ? new Date(iso).toLocaleTimeString() : '');

function Status({ look }: { look: Look }) {
  return (
    <span class={`status tone-${look.tone}`}>
      <span aria-hidden="true" class="icon">{look.icon}</span> {look.word}
    </span>
  );
}

/** The run id in the location hash (`#/sagas/<id>`): the back button and a bookmark work, and no secret is in it. */
function useHashRun(): [string | undefined, (id: string | undefined) => void] {
  const read = () => /^#\/sagas\/([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
  const [id, setId] = useState(read);
  useEffect(() => {
    const on = () => setId(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return [id, (next) => (location.hash = next ? `#/sagas/${next}` : '')];
}

export function App() {
  const [key, setKey] = useState(savedKey);
  const [session, setSession] = useState<SessionView>();
  const [loginError, setLoginError] = useState<string>();
  const api = useMemo(() => (key ? new Api(key) : undefined), [key]);

  useEffect(() => {
    if (!api) return;
    api.session().then(setSession, (err: unknown) => {
      setLoginError(err instanceof ApiError && err.status === 401 ? `That key was refused: ${err.message}` : message(err));
      forgetKey();
      setKey(undefined);
    });
  }, [api]);

  if (!api || !session) return <Login error={loginError} onKey={(k) => (saveKey(k), setLoginError(undefined), setKey(k))} />;
  const signOut = () => (forgetKey(), setSession(undefined), setKey(undefined));
  return <Explorer api={api} session={session} signOut={signOut} />;
}

function Login({ error, onKey }: { error?: string | undefined; onKey: (key: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main class="login">
      <h1>Saga explorer</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onKey(value.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <p class="hint">Kept in this tab's session storage only. <code>make dev</code> prints a key.</p>
        <button type="submit">Sign in</button>
        {error && <p role="alert" class="error">{error}</p>}
      </form>
    </main>
  );
}

function Explorer({ api, session, signOut }: { api: Api; session: SessionView; signOut: () => void }) {
  const [runId, openRun] = useHashRun();
  const admin = session.role === 'admin';
  return (
    <>
      <header class="top">
        <h1>Saga explorer</h1>
        <p>
          Signed in with {admin ? 'an admin' : 'a customer'} key <code>{session.id}…</code> <button onClick={signOut}>Sign out</button>
        </p>
      </header>
      <main class="layout">
        <div class="column">
          <PlaceOrder api={api} openRun={openRun} />
          {admin ? <LiveList api={api} openRun={openRun} selected={runId} /> : <CustomerNote />}
        </div>
        <div class="column">
          {runId ? <SagaView api={api} runId={runId} close={() => openRun(undefined)} /> : <OpenById openRun={openRun} />}
          {admin && session.faultInjection && <Faults api={api} />}
          {admin && <DeadLetters api={api} />}
        </div>
      </main>
    </>
  );
}

function CustomerNote() {
  return (
    <section aria-labelledby="sagas-h">
      <h2 id="sagas-h">Sagas</h2>
      <p>The live list of every saga needs an admin key. With this key you can place orders and open the saga of any order it placed.</p>
    </section>
  );
}

function OpenById({ openRun }: { openRun: (id: string) => void }) {
  const [id, setId] = useState('');
  return (
    <section aria-labelledby="open-h">
      <h2 id="open-h">Open a saga</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (id.trim()) openRun(id.trim());
        }}
      >
        <label for="open-id">Run or order id</label>
        <input id="open-id" value={id} onInput={(e) => setId(e.currentTarget.value)} pattern="[A-Za-z0-9_\-]+" required />
        <button type="submit">Open</button>
      </form>
    </section>
  );
}

function PlaceOrder({ api, openRun }: { api: Api; openRun: (id: string) => void }) {
  const [products, setProducts] = useState<Product[]>([]);
  const [sku, setSku] = useState('');
  const [quantity, setQuantity] = useState(1);
  const [customerId, setCustomerId] = useState('c-explorer');
  const [result, setResult] = useState<{ ok: boolean; text: string; orderId?: string }>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api.products().then((p) => (setProducts(p), setSku((s) => s || p[0]?.sku || '')), (err: unknown) => setResult({ ok: false, text: `Products unavailable: ${message(err)}` }));
  }, [api]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const placed = await api.placeOrder({ customerId, items: [{ sku, quantity }] });
      setResult({ ok: true, text: `Order ${placed.orderId} placed.`, orderId: placed.orderId });
    } catch (err) {
      setResult({ ok: false, text: `Not placed: ${message(err)}` });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="place-h">
      <h2 id="place-h">Place an order</h2>
      <form class="row" onSubmit={submit}>
        <label for="sku">Product</label>
        <select id="sku" value={sku} onChange={(e) => setSku(e.currentTarget.value)}>
          {products.map((p) => (
            <option key={p.sku} value={p.sku}>
              {p.sku} — {p.name} ({(p.price / 100).toFixed(2)}, {p.available} left)
            </option>
          ))}
        </select>
        <label for="qty">Quantity</label>
        <input id="qty" type="number" min={1} max={1000} value={quantity} onInput={(e) => setQuantity(Number(e.currentTarget.value))} />
        <label for="customer">Customer</label>
        <input id="customer" value={customerId} onInput={(e) => setCustomerId(e.currentTarget.value)} required />
        <button type="submit" disabled={busy || !sku}>
          Place order
        </button>
      </form>
      <div aria-live="polite">
        {result && (
          <p class={result.ok ? 'note' : 'error'}>
            {result.text}{' '}
            {result.orderId && (
              <button type="button" onClick={() => openRun(result.orderId!)}>
                Open its saga
              </button>
            )}
          </p>
        )}
      </div>
    </section>
  );
}

function LiveList({ api, openRun, selected }: { api: Api; openRun: (id: string) => void; selected: string | undefined }) {
  const model = useRef(new RunModel());
  const [tick, setTick] = useState(0);
  const [connection, setConnection] = useState<{ connected: boolean; error?: string | undefined }>({ connected: false });
  const [filter, setFilter] = useState<RunFilter>({ phases: [] });
  const [page, setPage] = useState(0);
  useEffect(() => {
    // Redraw on a timer, not per event: at hundreds of runs a second the page stays responsive.
    let dirty = false;
    const timer = setInterval(() => dirty && ((dirty = false), setTick((t) => t + 1)), RENDER_MS);
    const stop = api.runs({
      snapshot: (s) => ((dirty = true), model.current.snapshot(s.runs, s.capacity)),
      runs: (d) => ((dirty = true), model.current.apply(d.runs)),
      state: (connected, error) => setConnection({ connected, error }),
    });
    return () => (clearInterval(timer), stop());
  }, [api]);
  const runs = model.current.all();
  const view = useMemo(() => pageOf(runs, filter, page, PAGE_SIZE), [tick, filter, page]);
  const counts = useMemo(() => phaseCounts(runs), [tick]);
  const definitions = useMemo(() => definitionsOf(runs), [tick]);
  const togglePhase = (p: SagaPhase) => (setPage(0), setFilter((f) => ({ ...f, phases: f.phases.includes(p) ? f.phases.filter((x) => x !== p) : [...f.phases, p] })));

  return (
    <section aria-labelledby="sagas-h">
      <h2 id="sagas-h">Sagas</h2>
      <p class="meta" data-testid="connection">
        {connection.connected ? (
          <Status look={{ icon: '●', word: 'Live', tone: 'ok' }} />
        ) : (
          <Status look={{ icon: '○', word: connection.error ? `Reconnecting (${connection.error})` : 'Connecting', tone: 'idle' }} />
        )}{' '}
        — {model.current.size} most recent runs held (at most {model.current.capacity || '…'})
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <fieldset>
          <legend>Phase</legend>
          {LIST_PHASES.map((p) => (
            <label key={p} class="check">
              <input type="checkbox" name="phase" value={p} checked={filter.phases.includes(p)} onChange={() => togglePhase(p)} /> <Status look={phaseLook[p]} /> <span data-testid={`count-${p}`}>({counts[p]})</span>
            </label>
          ))}
        </fieldset>
        <label for="origin">Origin</label>
        <select id="origin" value={filter.origin ?? ''} onChange={(e) => (setPage(0), setFilter((f) => ({ ...f, origin: (e.currentTarget.value || undefined) as RunOrigin | undefined })))}>
          <option value="">any</option>
          {ORIGINS.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
        <label for="definition">Definition</label>
        <select id="definition" value={filter.definition ?? ''} onChange={(e) => (setPage(0), setFilter((f) => ({ ...f, definition: e.currentTarget.value || undefined })))}>
          <option value="">any</option>
          {definitions.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </form>
      <div class="scroll">
        <table class="runs">
          <caption>
            {view.total} matching run{view.total === 1 ? '' : 's'}, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Phase</th>
              <th scope="col">Origin</th>
              <th scope="col">Definition</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {view.rows.map((r) => (
              <tr key={r.runId} data-run={r.runId} data-phase={r.phase} aria-current={r.runId === selected ? 'true' : undefined}>
                <td>
                  <a href={`#/sagas/${r.runId}`} onClick={(e) => (e.preventDefault(), openRun(r.runId))}>
                    {r.runId}
                  </a>
                </td>
                <td>
                  <Status look={phaseLook[r.phase]} />
                  {r.currentStep && r.phase !== 'Succeeded' && <span class="meta"> at {r.currentStep}</span>}
                </td>
                <td>{r.origin}</td>
                <td>{r.definitionKey}</td>
                <td>{time(r.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="row" aria-label="Pages of the run list">
        <button disabled={view.page === 0} onClick={() => setPage(view.page - 1)}>
          Newer
        </button>
        <span data-testid="page">
          Page {view.page + 1} of {view.pages}
        </span>
        <button disabled={view.page >= view.pages - 1} onClick={() => setPage(view.page + 1)}>
          Older
        </button>
      </nav>
    </section>
  );
}

function SagaView({ api, runId, close }: { api: Api; runId: string; close: () => void }) {
  const [detail, setDetail] = useState<SagaDetail>();
  const [error, setError] = useState<string>();
  const heading = useRef<HTMLHeadingElement>(null);
  const load = useCallback(() => api.saga(runId).then((d) => (setDetail(d), setError(undefined)), (err: unknown) => setError(message(err))), [api, runId]);
  useEffect(() => {
    setDetail(undefined);
    void load();
    heading.current?.focus();
  }, [load]);
  // While the run is in flight, read it again now and then (this one run only; the list is pushed).
  useEffect(() => {
    if (!detail || ['Succeeded', 'Compensated', 'Failed'].includes(detail.run.phase)) return;
    const t = setTimeout(() => void load(), 500);
    return () => clearTimeout(t);
  }, [detail, load]);

  const timeline = detail && buildTimeline(detail.run, detail.events);
  const firstUndo = timeline?.entries.findIndex((e) => e.kind === 'compensation') ?? -1;
  return (
    <section aria-labelledby="saga-h" class="saga">
      <h2 id="saga-h" tabIndex={-1} ref={heading}>
        Saga {runId}
      </h2>
      <button onClick={close}>Close</button>
      {error && <p role="alert" class="error">{error}</p>}
      {detail && timeline && (
        <>
          <dl class="facts">
            <dt>Phase</dt>
            <dd data-testid="saga-phase">
              <Status look={phaseLook[detail.run.phase]} />
            </dd>
            <dt>Origin</dt>
            <dd>{detail.run.origin}</dd>
            <dt>Definition</dt>
            <dd>
              {detail.run.definitionKey} <span class="meta">(revision {detail.run.revision})</span>
            </dd>
            <dt>Started</dt>
            <dd>
              {time(detail.run.startedAt)}
              {detail.run.endedAt && `, ended ${time(detail.run.endedAt)} (${duration(Date.parse(detail.run.endedAt) - Date.parse(detail.run.startedAt))})`}
            </dd>
            {detail.order && (
              <>
                <dt>Order</dt>
                <dd>
                  {detail.order.orderId}: {detail.order.status}, customer {detail.order.customerId}, total {(detail.order.total / 100).toFixed(2)}
                </dd>
              </>
            )}
            <dt>Trace</dt>
            <dd>{detail.traceUrl ? <a href={detail.traceUrl}>{detail.run.traceId}</a> : (detail.run.traceId ?? 'none recorded')}</dd>
          </dl>
          {detail.degraded && <p class="error">The engine could not be asked: this is the last view the gateway saw.</p>}
          <h3>Timeline</h3>
          <ol class="timeline" data-testid="timeline">
            {timeline.entries.map((e, i) => (
              <Fragment key={`${e.kind}-${e.step}`}>
                {i === firstUndo && (
                  <li class="cause" key="cause">
                    <Status look={{ icon: '↺', word: 'Compensation, in reverse order', tone: 'undo' }} />
                    {timeline.compensationCause && <span>: {timeline.compensationCause}</span>}
                  </li>
                )}
                <Entry e={e} />
              </Fragment>
            ))}
          </ol>
          {!detail.eventsComplete && <p class="meta">Attempts' errors shown are those the gateway saw go by; it did not watch this run from its start.</p>}
          <h3>Input</h3>
          {detail.order ? (
            <table>
              <caption>The order's lines (the run's input, with its total as the amount)</caption>
              <thead>
                <tr>
                  <th scope="col">SKU</th>
                  <th scope="col">Quantity</th>
                  <th scope="col">Unit price</th>
                </tr>
              </thead>
              <tbody>
                {detail.order.items.map((it) => (
                  <tr key={it.sku}>
                    <td>{it.sku}</td>
                    <td>{it.quantity}</td>
                    <td>{(it.unitPrice / 100).toFixed(2)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p>The engine's public view does not carry a run's input: for a Saga resource, see its <code>spec.input</code> (kubectl get saga -o yaml).</p>
          )}
        </>
      )}
    </section>
  );
}

function Entry({ e }: { e: TimelineEntry }) {
  const look = outcomeLook[e.outcome];
  return (
    <li class={`entry ${e.kind} tone-${look.tone}`} data-kind={e.kind} data-step={e.step} data-outcome={e.outcome}>
      <strong>
        {e.kind === 'compensation' ? 'Undo ' : ''}
        {e.step}
      </strong>{' '}
      <Status look={look} />
      <span class="meta">
        {' '}
        · {e.attempts} attempt{e.attempts === 1 ? '' : 's'}
        {e.startedAt && ` · started ${time(e.startedAt)}`}
        {e.durationMs !== undefined && ` · took ${duration(e.durationMs)}`}
      </span>
      {e.error && <p class="error">Error: {e.error}</p>}
      {e.failures.length > 0 && (
        <ul class="failures">
          {e.failures.map((f) => (
            <li key={f.at + f.message}>
              {time(f.at)}: {f.message}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

function Faults({ api }: { api: Api }) {
  const [faults, setFaults] = useState<Fault[]>([]);
  const [note, setNote] = useState<{ ok: boolean; text: string }>();
  const reload = useCallback(() => api.faults().then(setFaults, (err: unknown) => setNote({ ok: false, text: message(err) })), [api]);
  useEffect(() => void reload(), [reload]);
  const act = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      setNote({ ok: true, text: what });
    } catch (err) {
      setNote({ ok: false, text: `${what} failed: ${message(err)}` });
    }
    await reload();
  };
  return (
    <section aria-labelledby="faults-h" data-testid="faults">
      <h2 id="faults-h">Faults</h2>
      <p class="meta">Injected per step, at once, for every new command (admin keys only).</p>
      <div class="scroll">
        <table>
          <caption>One row per participant command</caption>
          <thead>
            <tr>
              <th scope="col">Target</th>
              <th scope="col">Failure rate</th>
              <th scope="col">Latency (ms)</th>
              <th scope="col">Crash after commit</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {FAULT_TARGETS.map((t) => (
              <FaultRow key={`${t}-${JSON.stringify(faults.find((f) => f.target === t))}`} target={t} fault={faults.find((f) => f.target === t)} save={(f) => act(`Fault on ${t} set`, () => api.putFault(f))} />
            ))}
          </tbody>
        </table>
      </div>
      <button onClick={() => act('Faults cleared', () => api.clearFaults())}>Clear all faults</button>
      <div aria-live="polite">{note && <p class={note.ok ? 'note' : 'error'}>{note.text}</p>}</div>
    </section>
  );
}

function FaultRow({ target, fault, save }: { target: string; fault: Fault | undefined; save: (f: Fault) => void }) {
  const [rate, setRate] = useState(fault?.failureRate ?? 0);
  const [latency, setLatency] = useState(fault?.latencyMs ?? 0);
  const [crash, setCrash] = useState(fault?.crashAfterCommit ?? false);
  const id = target.replace('.', '-');
  return (
    <tr data-target={target}>
      <th scope="row">{target}</th>
      <td>
        <label class="sr-only" for={`rate-${id}`}>
          Failure rate of {target}
        </label>
        <input id={`rate-${id}`} type="number" min={0} max={1} step={0.05} value={rate} onInput={(e) => setRate(Number(e.currentTarget.value))} />
      </td>
      <td>
        <label class="sr-only" for={`latency-${id}`}>
          Latency of {target} in milliseconds
        </label>
        <input id={`latency-${id}`} type="number" min={0} max={60000} step={100} value={latency} onInput={(e) => setLatency(Number(e.currentTarget.value))} />
      </td>
      <td>
        <input id={`crash-${id}`} type="checkbox" checked={crash} onChange={(e) => setCrash(e.currentTarget.checked)} aria-label={`Crash ${target.split('.')[0]} after it commits ${target}`} />
      </td>
      <td>
        <button onClick={() => save({ target, failureRate: rate, latencyMs: latency, crashAfterCommit: crash })}>Apply to {target}</button>
      </td>
    </tr>
  );
}

function DeadLetters({ api }: { api: Api }) {
  const [list, setList] = useState<{ total: number; deadLetters: DeadLetterView[] }>();
  const [note, setNote] = useState<{ ok: boolean; text: string }>();
  const reload = useCallback(() => api.deadLetters().then(setList, (err: unknown) => setNote({ ok: false, text: message(err) })), [api]);
  useEffect(() => void reload(), [reload]);
  const replay = async (seq: number) => {
    try {
      const d = await api.replay(seq);
      setNote({ ok: true, text: `Dead letter ${seq} replayed on ${d.subject}.` });
    } catch (err) {
      setNote({ ok: false, text: `Replay of ${seq} failed: ${message(err)}` });
    }
    await reload();
  };
  return (
    <section aria-labelledby="dlq-h" data-testid="dead-letters">
      <h2 id="dlq-h">Dead letters</h2>
      <button onClick={() => void reload()}>Refresh</button>
      <div aria-live="polite">{note && <p class={note.ok ? 'note' : 'error'}>{note.text}</p>}</div>
      {list && list.deadLetters.length === 0 && <p>No dead letters.</p>}
      {list && list.deadLetters.length > 0 && (
        <div class="scroll">
          <table>
            <caption>
              The newest {list.deadLetters.length} of {list.total}
            </caption>
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">Died on</th>
                <th scope="col">Consumer</th>
                <th scope="col">Reason</th>
                <th scope="col">When</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {list.deadLetters.map((d) => (
                <tr key={d.seq} data-seq={d.seq}>
                  <td>{d.seq}</td>
                  <td>{d.subject}</td>
                  <td>
                    {d.stream}/{d.consumer}
                  </td>
                  <td>{d.reason}</td>
                  <td>{time(d.time)}</td>
                  <td>
                    <button onClick={() => void replay(d.seq)}>Replay {d.seq}</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
