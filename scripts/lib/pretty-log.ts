/** Turns the services' pino JSON lines into short readable ones for `make dev`. */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg', 'v']);
const PALETTE = [36, 32, 33, 35, 34, 96, 92, 93, 95];

export function formatLogLine(line: string): string | undefined {
  if (!line.trim()) return undefined;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof rec !== 'object' || rec === null) return line;
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = LEVELS[rec.level as number] ?? String(rec.level ?? '');
  const ctx = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level} ${String(rec.msg ?? '')}${ctx ? `  ${ctx}` : ''}`;
}

export function serviceColor(service: string, color: boolean): string {
  const label = `[${service}]`.padEnd(16);
  if (!color) return label;
  let h = 0;
  for (const c of service) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `\x1b[${PALETTE[h % PALETTE.length]}m${label}\x1b[0m`;
}
