import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DEV_API_KEY } from '@sagamesh/contracts';
import {
  dueBy, formatHpas, isAllowedTarget, LOAD_DEFAULTS, LoadArgsError, parseHpas, parseLoadArgs, percentile, progressLine, rampSchedule, ReplicaPeaks, runLoad,
  summaryTable, Tally, USAGE, wantsHelp, watchHpas,
} from '../../scripts/load.ts';

describe('make load: arguments', () => {
  it('has defaults that scale the HPAs: the local gateway, 40/s peak, 120 s, 60 s to settle, the dev key', () => {
    const o = parseLoadArgs([]);
    assert.equal(o.url.toString(), 'http://localhost:8080/');
    assert.deepEqual([o.rate, o.durationS, o.settleS, o.apiKey, o.adminKey], [40, 120, 60, DEV_API_KEY, DEV_API_KEY]);
  });

  it('--help (or -h) asks for the usage, which names every flag and its default', () => {
    assert.ok(wantsHelp(['--help']) && wantsHelp(['--rate', '5', '-h']));
    assert.ok(!wantsHelp(['--rate', '5']));
    for (const flag of ['--url', '--rate', '--duration', '--settle', '--api-key', '--api-key-file', '--admin-key', '--admin-key-file', '--kube-context', '--namespace', '--help']) {
      assert.match(USAGE, new RegExp(`${flag}\\b`), flag);
      // Every flag in the usage is one the parser takes (help aside).
      if (flag !== '--help' && !/^--(api|admin)-key/.test(flag)) assert.doesNotThrow(() => parseLoadArgs([flag, flag === '--url' ? 'http://localhost:1' : flag.endsWith('context') || flag === '--namespace' ? 'x' : '1']));
    }
    assert.match(USAGE, new RegExp(`default ${LOAD_DEFAULTS.rate}\\b`));
  });

  it('loads only loopback addresses and cluster Service names', () => {
    for (const ok of ['http://localhost:8080', 'http://127.0.0.1:1', 'http://127.9.9.9', 'http://[::1]:8080', 'http://gateway.sagamesh.svc.cluster.local:8080', 'http://gateway.sagamesh.svc']) {
      assert.ok(isAllowedTarget(new URL(ok)), ok);
    }
    for (const bad of ['http://example.com', 'http://10.0.0.1', 'http://192.168.1.10:8080', 'http://8.8.8.8', 'http://[2001:db8::1]', 'http://localhost.example.com', 'http://svc.cluster.local.evil.com']) {
      assert.ok(!isAllowedTarget(new URL(bad)), bad);
      assert.throws(() => parseLoadArgs(['--url', bad]), /neither a loopback address nor a cluster Service name/);
    }
  });

  it('refuses unbounded or malformed flags with a message that says what to give', () => {
    const cases: [string[], RegExp][] = [
      [['--rate', '0'], /--rate 0 must be an integer 1–2000/],
      [['--rate', '5000'], /--rate 5000 must be an integer 1–2000/],
      [['--duration', '601'], /--duration 601 must be an integer 1–600/],
      [['--duration', '1.5'], /--duration 1\.5 must be an integer/],
      [['--settle=-1'], /--settle -1 must be an integer 0–600/],
      [['--settle', '601'], /--settle 601 must be an integer 0–600/],
      [['--url', 'not a url'], /is not a URL/],
      [['--url', 'ftp://localhost'], /must be http\(s\)/],
      [['--api-key', 'a', '--api-key-file', 'f'], /give --api-key or --api-key-file, not both/],
      [['--admin-key', 'a', '--admin-key-file', 'f'], /give --admin-key or --admin-key-file, not both/],
      [['--bogus'], /Unknown option '--bogus'.*flags: --url --rate.*--help/],
    ];
    for (const [argv, message] of cases) assert.throws(() => parseLoadArgs(argv), (e: unknown) => e instanceof LoadArgsError && message.test(e.message), argv.join(' '));
  });

  it('reads the API key from a file (make up writes .dev/cluster/api-key) and trims it', () => {
    assert.equal(parseLoadArgs(['--api-key-file', 'k'], () => ' abc\n').apiKey, 'abc');
    assert.throws(() => parseLoadArgs(['--api-key-file', 'k'], () => '\n'), /the API key is empty \(k\)/);
  });

  it('asks /admin/audit with the admin key (make up writes .dev/cluster/admin-key), by default the API key', () => {
    const files: Record<string, string> = { api: 'customer-key\n', admin: ' admin-key\n' };
    const o = parseLoadArgs(['--api-key-file', 'api', '--admin-key-file', 'admin'], (f) => files[f]!);
    assert.deepEqual([o.apiKey, o.adminKey], ['customer-key', 'admin-key']);
    assert.deepEqual(
      ((p) => [p.apiKey, p.adminKey])(parseLoadArgs(['--api-key', 'only-key'])),
      ['only-key', 'only-key'],
    );
    assert.equal(parseLoadArgs(['--admin-key', 'adm']).adminKey, 'adm');
    assert.throws(() => parseLoadArgs(['--admin-key-file', 'admin'], () => ''), /the admin key is empty \(admin\)/);
  });
});

describe('make load: the ramp', () => {
  it('climbs to the peak, holds it for at least half the steps, falls back symmetrically, over exactly the duration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 600 }), (peak, duration) => {
        const steps = rampSchedule(peak, duration);
        assert.equal(steps.reduce((n, s) => n + s.seconds, 0), duration);
        assert.ok(steps.every((s) => s.seconds >= 1 && s.rate >= 1 && s.rate <= peak));
        const rates = steps.map((s) => s.rate);
        assert.deepEqual(rates, [...rates].reverse(), 'symmetric');
        const top = rates.indexOf(peak);
        for (let i = 1; i <= top; i++) assert.ok(rates[i]! >= rates[i - 1]!, 'non-decreasing up to the peak');
        assert.ok(rates.filter((r) => r === peak).length * 2 >= rates.length, 'the peak holds for half the steps or more');
      }),
    );
    // The default: 12 steps of 10 s, a 30 s climb, 60 s at 150/s, a 30 s fall.
    assert.deepEqual(rampSchedule(150, 120), [38, 75, 113, 150, 150, 150, 150, 150, 150, 113, 75, 38].map((rate) => ({ rate, seconds: 10 })));
  });

  it('sends request i of a step at i/rate seconds, and exactly rate × seconds by the end of the step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 60 }), fc.array(fc.nat({ max: 70_000 })), (rate, seconds, times) => {
        const step = { rate, seconds };
        const sorted = [...times].sort((a, b) => a - b);
        for (let i = 1; i < sorted.length; i++) assert.ok(dueBy(step, sorted[i]!) >= dueBy(step, sorted[i - 1]!), 'never goes back');
        for (const t of times) assert.ok(dueBy(step, t) <= rate * seconds);
        assert.equal(dueBy(step, seconds * 1000), rate * seconds);
        assert.equal(dueBy(step, 0), 0);
      }),
    );
  });
});

describe('make load: counting', () => {
  it('sent = accepted + errors + in flight at every instant, and the kinds add up to the errors', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant('send'), fc.constantFrom(202, 429, 502), fc.constantFrom('timeout', 'ECONNRESET'))), (ops) => {
        const t = new Tally();
        for (const op of ops) {
          if (op === 'send') t.onSent();
          else if (t.inFlight > 0) t.onEnded(typeof op === 'number' ? { status: op } : { error: op }, 1);
          assert.equal(t.sent, t.accepted + t.errors + t.inFlight);
          assert.equal([...t.byKind.values()].reduce((a, b) => a + b, 0), t.errors);
        }
      }),
    );
  });

  // A real HTTP server standing in for the gateway, counting what arrives: the script's totals must match it
  // exactly, with requests in flight at every step change and at the end (the old one lost one per connection
  // and step: a 20/s × 10 s run reported 121 requests while the gateway got 240).
  describe('against a real HTTP server', () => {
    let server: Server;
    let url: URL;
    const got = { requests: 0, accepted: 0, refused: 0, dropped: 0, silent: 0 };
    before(async () => {
      server = createServer((req, res) => {
        const n = ++got.requests;
        req.resume();
        // Every 13th is never answered; every 7th loses its connection; every 5th is rate limited; the rest wait 0.2-1.2 s.
        if (n % 13 === 0) return void got.silent++;
        if (n % 7 === 0) return void (got.dropped++, req.socket.destroy());
        setTimeout(() => {
          if (n % 5 === 0) (got.refused++, res.writeHead(429).end());
          else (got.accepted++, res.writeHead(202, { 'content-type': 'application/json' }).end('{"orderId":"ord-x","status":"PENDING"}'));
        }, 200 + (n % 11) * 100);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('counts every request it sends, each once, when it ends: answered, dropped or timed out', async () => {
      const lines: string[] = [];
      const { total, steps, peakAnswered } = await runLoad({ url, rate: 20, durationS: 4, apiKey: 'k', requestTimeoutMs: 2500 }, (l) => lines.push(l));
      const scheduled = steps.reduce((n, s) => n + s.rate * s.seconds, 0);
      assert.deepEqual(steps.map((s) => s.rate), [10, 20, 20, 10]);
      assert.equal(scheduled, 60);
      assert.equal(got.requests, scheduled, 'the server got exactly the schedule');
      assert.equal(total.sent, got.requests, 'sent = what arrived');
      assert.equal(total.inFlight, 0, 'the run waited for the last one');
      assert.equal(total.accepted, got.accepted);
      assert.deepEqual(Object.fromEntries(total.byKind), { 'HTTP 429': got.refused, ECONNRESET: got.dropped, timeout: got.silent });
      assert.equal(total.accepted + total.errors, total.sent);
      assert.ok(peakAnswered > 0 && peakAnswered <= 20 + got.refused + got.dropped);
      assert.equal(lines.filter((l) => /^--- step \d+\/4: \d+\/s for 1s/.test(l)).length, 4, 'a line per step');
      assert.ok(lines.some((l) => /^\[\s+\d+s\] offered\s+\d+\/s\s+sent\s+\d+\s+answered/.test(l)), 'progress lines');
      assert.ok(lines.some((l) => /waiting for the \d+ in flight/.test(l)));
    });
  });
});

describe('make load: reporting', () => {
  it('percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile([], 50), undefined);
  });

  it('reads the HPAs current/desired replicas and CPU from kubectl JSON, and keeps first and peak replicas', () => {
    const json = (gateway: number) =>
      JSON.stringify({
        items: [
          { metadata: { name: 'gateway' }, status: { currentReplicas: gateway, desiredReplicas: 4, currentMetrics: [{ type: 'ContainerResource', containerResource: { name: 'cpu', container: 'app', current: { averageUtilization: 143 } } }] } },
          { metadata: { name: 'orders' }, status: { currentReplicas: 1, desiredReplicas: 1 } },
        ],
      });
    const hpas = parseHpas(json(2));
    assert.deepEqual(hpas, [{ name: 'gateway', current: 2, desired: 4, cpuPercent: 143 }, { name: 'orders', current: 1, desired: 1 }]);
    assert.equal(formatHpas(hpas), 'gateway 2→4 143%  orders 1→1');
    const peaks = new ReplicaPeaks();
    for (const n of [1, 3, 2]) peaks.observe(parseHpas(json(n)));
    assert.deepEqual(peaks.entries(), [['gateway', '1→3'], ['orders', '1→1']]);
  });

  it('watches the HPAs one poll at a time: the latest answer is shown, every answer counts for the peaks', async () => {
    const answers: ((v: ReturnType<typeof parseHpas> | undefined) => void)[] = [];
    const watch = watchHpas(() => new Promise((resolve) => answers.push(resolve)));
    const hpa = (current: number) => [{ name: 'orders', current, desired: current + 1 }];
    watch.poll();
    watch.poll(); // while one is in flight: no second kubectl
    assert.equal(answers.length, 1);
    answers[0]!(hpa(2));
    await new Promise((r) => setImmediate(r));
    assert.equal(watch.text(), 'orders 2→3');
    watch.poll();
    answers[1]!(undefined); // kubectl failed this time: the last answer stays
    await new Promise((r) => setImmediate(r));
    assert.equal(watch.text(), 'orders 2→3');
    assert.deepEqual(watch.peaks.entries(), [['orders', '2→2']]);
  });

  it('a progress line shows offered rate, sent, answered, errors, in flight, p50/p99 and the HPAs', () => {
    const w = new Tally();
    for (let i = 0; i < 11; i++) w.onSent();
    for (const [i, ms] of [5, 10, 20].entries()) w.onEnded(i === 0 ? { status: 502 } : { status: 202 }, ms);
    const total = new Tally();
    for (let i = 0; i < 5; i++) total.onSent();
    total.onEnded({ error: 'timeout' }, 1);
    const line = progressLine(12, 10, w, total, 'gateway 1→2 90%');
    assert.match(line, /^\[\s+12s\] offered\s+10\/s\s+sent\s+11\s+answered\s+3\s+errors\s+1 \(total 1\)\s+in flight\s+4\s+p50\s+10ms\s+p99\s+20ms\s+\| hpa gateway 1→2 90%$/);
  });

  it('the summary lists sent, accepted, errors by kind, orders pending, p50/p99 and the peak replicas', () => {
    const table = summaryTable({
      sent: 120, accepted: 100, errors: 20, byKind: new Map([['timeout', 5], ['HTTP 429', 15]]), p50Ms: 12.4, p99Ms: 250,
      peakOffered: 30, peakAnswered: 28, pending: 3, replicas: [['gateway', '1→4']],
    });
    assert.match(table, /\| requests sent\s+\| 120\s+\|/);
    assert.match(table, /\| accepted \(202\)\s+\| 100\s+\|/);
    assert.match(table, /\| errors\s+\| 20 \(HTTP 429: 15, timeout: 5\)\s+\|/);
    assert.match(table, /\| orders pending\s+\| 3\s+\|/);
    assert.match(table, /\| p50 latency\s+\| 12ms/);
    assert.match(table, /\| p99 latency\s+\| 250ms/);
    assert.match(table, /\| peak replicas\s+\| gateway 1→4/);
    assert.equal(new Set(table.split('\n').map((l) => l.length)).size, 1, 'aligned');
    const unknown = summaryTable({ sent: 0, accepted: 0, errors: 0, byKind: new Map(), peakOffered: 1, peakAnswered: 0, pending: 'GET /admin/audit answered 401', replicas: [] });
    assert.match(unknown, /\| orders pending\s+\| unknown: GET \/admin\/audit answered 401/);
    assert.match(unknown, /\| peak replicas\s+\| no HPA seen/);
  });
});
