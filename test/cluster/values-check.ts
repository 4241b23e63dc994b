/**
 * Checks a Helm values document against the project's fixture of what a pinned chart version documents:
 * every key set must be listed (or sit below a free-form `map`), with the listed type.
 */
export type KeyType = 'boolean' | 'string' | 'integer' | 'number' | 'array' | 'object' | 'map';
export interface ChartFixture {
  chart: string;
  version: string;
  source: string;
  keys: Record<string, KeyType>;
}

function typeOf(v: unknown): KeyType | 'null' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'object') return 'object';
  return typeof v as 'string' | 'boolean';
}

function fits(actual: KeyType | 'null', expected: KeyType): boolean {
  if (expected === 'map') return actual === 'object';
  if (expected === 'number') return actual === 'number' || actual === 'integer';
  return actual === expected;
}

/** Every problem (empty when the values fit). Paths use `/` (keys may contain dots, e.g. grafana.ini). */
export function checkValues(values: unknown, fixture: ChartFixture, at = ''): string[] {
  const problems: string[] = [];
  if (typeOf(values) !== 'object') return [`${at || '(root)'}: expected a mapping`];
  for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
    const p = at ? `${at}/${key}` : key;
    const expected = fixture.keys[p];
    if (!expected) {
      problems.push(`${p}: not a key that ${fixture.chart} ${fixture.version} documents (fixture charts/fixtures/${fixture.chart}-${fixture.version}.keys.json)`);
      continue;
    }
    const actual = typeOf(value);
    if (!fits(actual, expected)) {
      problems.push(`${p}: ${fixture.chart} ${fixture.version} documents a ${expected}, the values file has a ${actual}`);
      continue;
    }
    if (expected === 'object') problems.push(...checkValues(value, fixture, p));
  }
  return problems;
}
