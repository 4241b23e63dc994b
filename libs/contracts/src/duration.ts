/** Durations are Go-style strings (`500ms`, `5s`, `2m`, `1h30m`), as in Kubernetes APIs. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';
const partRe = /([0-9]+)(ms|s|m|h)/g;
const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(text: string): number {
  if (!new RegExp(DURATION_PATTERN).test(text)) {
    throw new Error(`invalid duration "${text}": use a number with a unit, e.g. 500ms, 5s, 2m, 1h30m`);
  }
  let total = 0;
  for (const m of text.matchAll(partRe)) total += Number(m[1]) * unitMs[m[2] as keyof typeof unitMs];
  return total;
}
