/**
 * `npm run chaos [-- --orders N --in-flight N --failure-rate R]`: the chaos run of scripts/lib/chaos.ts on the whole
 * platform as local processes (its own ports and store; nothing else needs to run). Prints the figures; exit 1 when
 * anything does not hold at rest.
 */
import { parseArgs } from 'node:util';
import { runChaos } from './lib/chaos.ts';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '10000' },
    'in-flight': { type: 'string', default: '60' },
    'failure-rate': { type: 'string', default: '0.2' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: npm run chaos -- [--orders 10000] [--in-flight 60] [--failure-rate 0.2]');
  process.exit(0);
}
const orders = Number(values.orders);
const inFlight = Number(values['in-flight']);
const failureRate = Number(values['failure-rate']);
if (!(Number.isInteger(orders) && orders >= 10 && orders <= 100_000) || !(Number.isInteger(inFlight) && inFlight >= 1 && inFlight <= 500) || !(failureRate >= 0 && failureRate <= 1)) {
  console.error('chaos: --orders 10–100000, --in-flight 1–500, --failure-rate 0–1');
  process.exit(2);
}
const t0 = Date.now();
const report = await runChaos({ orders, inFlight, failureRate, onProgress: (l) => console.log(`[chaos ${String(Math.round((Date.now() - t0) / 1000)).padStart(4)}s] ${l}`) });
console.log(JSON.stringify({ ...report, quiescenceSeconds: Math.round(report.quiescenceSeconds), totalSeconds: Math.round(report.totalSeconds) }, null, 2));
console.log(report.violations.length === 0 ? 'chaos: every saga ended, every status matches its run, the books balance, no dead letter' : `chaos: FAILED — ${report.violations.length} violation(s)`);
process.exit(report.violations.length === 0 ? 0 : 1);
