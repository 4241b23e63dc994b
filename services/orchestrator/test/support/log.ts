// A real logger whose lines a test can read back.
import { createLogger, type Logger } from '@sagamesh/runtime';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export function capturingLogger(level = 'info'): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger('test', level, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}
