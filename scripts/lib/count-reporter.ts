/**
 * A node:test reporter that writes the run's totals as JSON, so scripts/test.ts can add tiers up, and each failed
 * test's name with the first lines of its error, so a long run's last lines say what failed and why.
 */
export default async function* countReporter(source: AsyncIterable<{ type: string; data: any }>) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0 };
  const failures: string[] = [];
  for await (const event of source) {
    if (event.type === 'test:summary' && event.data.file === undefined) {
      const c = event.data.counts;
      counts.passed += c.passed;
      counts.failed += c.failed;
      counts.skipped += c.skipped;
      counts.todo += c.todo;
      counts.cancelled += c.cancelled;
    }
    // A suite fails when a test in it fails: its own line adds nothing.
    if (event.type === 'test:fail' && event.data.details?.type !== 'suite') {
      const err = event.data.details?.error;
      const message = String(err?.cause?.message ?? err?.message ?? err ?? 'failed');
      failures.push(`${event.data.name} (${event.data.file ?? '?'}): ${message.split('\n').slice(0, 8).join('\n    ').slice(0, 1500)}`);
    }
  }
  yield JSON.stringify({ ...counts, failures });
}
