import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEV_API_KEY } from '@sagamesh/contracts';
import { formatHpas, isAllowedTarget, LoadArgsError, newCounters, parseHpas, parseLoadArgs, percentile, progressLine, rampSchedule, summaryTable } from '../../scripts/load.ts';

describe('make load: arguments', () => {
  it('has safe defaults: the local gateway, 30/s peak, 90 s, the dev key', () => {
    const o = parseLoadArgs([]);
    assert.equal(o.url.toString(), 'http://localhost:8080/');
    assert.deepEqual([o.rate, o.durationS, o.apiKey], [30, 90, DEV_API_KEY]);
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
      [['--url', 'not a url'], /is not a URL/],
      [['--url', 'ftp://localhost'], /must be http\(s\)/],
      [['--api-key', 'a', '--api-key-file', 'f'], /not both/],
      [['--bogus'], /Unknown option '--bogus'.*flags: --url --rate/],
    ];
    for (const [argv, message] of cases) assert.throws(() => parseLoadArgs(argv), (e: unknown) => e instanceof LoadArgsError && message.test(e.message), argv.join(' '));
  });

  it('reads the API key from a file (make up writes .dev/cluster/api-key) and trims it', () => {
    assert.equal(parseLoadArgs(['--api-key-file', 'k'], () => ' abc\n').apiKey, 'abc');
    assert.throws(() => parseLoadArgs(['--api-key-file', 'k'], () => '\n'), /the API key is empty \(k\)/);
  });
});

describe('make load: the ramp', () => {
  it('rises to the peak and falls back symmetrically, over exactly the duration, never below 1/s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 600 }), (peak, duration) => {
        const steps = rampSchedule(peak, duration);
        assert.equal(steps.reduce((n, s) => n + s.seconds, 0), duration);
        assert.ok(steps.every((s) => s.seconds >= 1 && s.rate >= 1 && s.rate <= peak));
        assert.equal(Math.max(...steps.map((s) => s.rate)), peak);
        const rates = steps.map((s) => s.rate);
        assert.deepEqual(rates, [...rates].reverse(), 'symmetric');
        const top = rates.indexOf(peak);
        for (let i = 1; i <= top; i++) assert.ok(rates[i]! >= rates[i - 1]!, 'non-decreasing up to the peak');
      }),
    );
    assert.deepEqual(rampSchedule(30, 90).map((s) => s.rate), [6, 12, 18, 24, 30, 30, 24, 18, 12, 6]);
  });
});

describe('make load: reporting', () => {
  it('percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile([], 50), undefined);
  });

  it('reads the HPAs current/desired replicas and CPU from kubectl JSON', () => {
    const json = JSON.stringify({
      items: [
        { metadata: { name: 'gateway' }, status: { currentReplicas: 2, desiredReplicas: 4, currentMetrics: [{ type: 'ContainerResource', containerResource: { name: 'cpu', container: 'app', current: { averageUtilization: 143 } } }] } },
        { metadata: { name: 'orders' }, status: { currentReplicas: 1, desiredReplicas: 1 } },
      ],
    });
    const hpas = parseHpas(json);
    assert.deepEqual(hpas, [{ name: 'gateway', current: 2, desired: 4, cpuPercent: 143 }, { name: 'orders', current: 1, desired: 1 }]);
    assert.equal(formatHpas(hpas), 'gateway 2→4 143%  orders 1→1');
  });

  it('a progress line shows offered and achieved rate, errors, p50/p99 and the HPAs', () => {
    const w = newCounters();
    w.ok = 9;
    w.errors = 1;
    w.latenciesMs.push(5, 10, 20);
    const total = { ...newCounters(), errors: 3 };
    const line = progressLine(12, 10, w, total, 'gateway 1→2 90%');
    assert.match(line, /^\[\s+12s\] offered\s+10\/s\s+achieved\s+10\/s\s+errors\s+1 \(total 3\)\s+p50\s+10ms\s+p99\s+20ms\s+\| hpa gateway 1→2 90%$/);
  });

  it('the summary table lists requests sent, errors by status, p50/p99 and the max replicas seen', () => {
    const table = summaryTable({ sent: 120, ok: 100, errors: 20, p50Ms: 12.4, p99Ms: 250, peakOffered: 30, peakAchieved: 28, byStatus: new Map([['429', 15], ['transport', 5]]), maxReplicas: new Map([['gateway', 4]]) });
    assert.match(table, /\| requests sent \| 120\s+\|/);
    assert.match(table, /\| errors\s+\| 20 \(429: 15, transport: 5\)\s+\|/);
    assert.match(table, /\| p50 latency\s+\| 12ms/);
    assert.match(table, /\| p99 latency\s+\| 250ms/);
    assert.match(table, /\| max replicas\s+\| gateway 4/);
    const widths = new Set(table.split('\n').map((l) => l.length));
    assert.equal(widths.size, 1, 'aligned');
  });
});
