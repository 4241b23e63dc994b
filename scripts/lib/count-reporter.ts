/** A node:test reporter that writes the run's totals as JSON, so scripts/test.ts can add tiers up. */
export default async function* countReporter(source: AsyncIterable<{ type: string; data: any }>) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, cancelled: 0 };
  for await (const event of source) {
    if (event.type === 'test:summary' && event.data.file === undefined) {
      const c = event.data.counts;
      counts.passed += c.passed;
      counts.failed += c.failed;
      counts.skipped += c.skipped;
      counts.todo += c.todo;
      counts.cancelled += c.cancelled;
    }
  }
  yield JSON.stringify(counts);
}
