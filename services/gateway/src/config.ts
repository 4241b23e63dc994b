import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { Ports } from '@sagamesh/contracts';
import { CommonConfig, portConfig } from '@sagamesh/runtime/config';
import { FaultInjectionConfig } from '@sagamesh/participant/config';

const ms = (dflt: number, description: string, minimum = 1) => Type.Integer({ minimum, maximum: 600_000, default: dflt, description });

export const GatewayConfigSchema = Type.Object({
  ...CommonConfig,
  ...portConfig(Ports.gateway),
  ...FaultInjectionConfig,
  ORDERS_URL: Type.String({ pattern: '^https?://', default: `http://127.0.0.1:${Ports.orders}`, description: 'Base URL of the orders service' }),
  API_KEYS: Type.String({ default: '', description: 'Customer API keys, comma-separated, each at least 16 characters: /api/* only, and only the orders the key placed' }),
  ADMIN_API_KEYS: Type.String({ default: '', description: 'Admin API keys, comma-separated, each at least 16 characters, none also in API_KEYS: /admin/* too, and every order' }),
  DEV_MODE: Type.Boolean({ default: false, description: 'Also accept the well-known dev key (DEV_API_KEY) as an admin key; never in production' }),

  ORDERS_TIMEOUT_MS: ms(3000, 'Timeout of one HTTP call to orders'),
  ENGINE_TIMEOUT_MS: ms(1000, 'Timeout of one saga engine request (GET /api/orders/:id degrades past it)'),
  QUERY_TIMEOUT_MS: ms(2000, 'Timeout of one query.<service>.* request (products, books)'),
  JETSTREAM_TIMEOUT_MS: ms(3000, 'Timeout of one JetStream/KV operation (idempotency keys, faults)'),
  IDEMPOTENCY_WAIT_MS: ms(5000, 'How long a concurrent duplicate waits for the first request before taking over'),
  PRODUCTS_CACHE_TTL_MS: ms(5000, 'Safety-net TTL of the product cache (stock_changed events invalidate it sooner)', 0),

  RATE_LIMIT_POINTS: Type.Integer({ minimum: 1, default: 2000, description: 'Requests per API key per window' }),
  RATE_LIMIT_WINDOW_S: Type.Integer({ minimum: 1, maximum: 3600, default: 1, description: 'Rate limit window, seconds' }),

  BREAKER_ERROR_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'Failure percentage in the window that opens a breaker' }),
  BREAKER_VOLUME_THRESHOLD: Type.Integer({ minimum: 0, default: 10, description: 'Calls in the window before a breaker may open' }),
  BREAKER_WINDOW_MS: ms(10_000, 'Rolling window of the breaker statistics', 100),
  BREAKER_RESET_MS: ms(5000, 'How long an open breaker waits before letting one trial call through (half-open)'),

  // The saga explorer (/ui/).
  UI_DIR: Type.String({ minLength: 1, default: fileURLToPath(new URL('../../../ui/dist', import.meta.url)), description: 'The built saga explorer (npm run build -w ui), served under /ui/' }),
  EXPLORER_RUNS: Type.Integer({ minimum: 10, maximum: 50_000, default: 2000, description: 'Most recent runs the explorer holds in memory and lists (older ones leave the list)' }),
  EXPLORER_FLUSH_MS: ms(250, 'The live list sends what changed at most this often, each run once at its latest version', 10),
  EXPLORER_IDLE_MS: ms(60_000, 'With no live list open this long, the explorer stops following the saga events (it reads the recent past again at the next open)', 10),
  EXPLORER_HEARTBEAT_MS: ms(15_000, 'A heartbeat on each live-list stream this often (keeps proxies from closing an idle one)', 100),
  TRACE_URL_TEMPLATE: Type.String({ default: '', pattern: '^$|\\{traceId\\}', description: 'Link from a run to its trace, {traceId} replaced, e.g. http://localhost:16686/trace/{traceId}; empty: no link' }),
  DLQ_NATS_USER: Type.Optional(
    Type.String({ minLength: 1, description: "The NATS user that replays dead letters (it publishes on the subject a message died on: another identity's, so never the gateway's own); unset: the gateway's connection, enough on a server without authorization" }),
  ),
  DLQ_NATS_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: "DLQ_NATS_USER's password (never logged)" })),
});
export type GatewayConfig = Static<typeof GatewayConfigSchema>;
