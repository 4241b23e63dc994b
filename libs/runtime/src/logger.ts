import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

// Secret-bearing fields, at the top level, one level down, and in request headers.
const SECRET_FIELDS = ['authorization', 'apiKey', 'api_key', 'password', 'pass', 'NATS_PASSWORD', 'DLQ_NATS_PASSWORD', 'token', 'secret'];
const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization',
  'headers.authorization',
  'req.headers["x-api-key"]',
];

/**
 * The one logger: pino JSON lines with `service` on every line and secrets redacted.
 * Context object first: `log.info({ runId, step }, 'step done')`.
 * `destination` lets tests capture the lines.
 */
export function createLogger(service: string, level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}
