/**
 * The whole platform in this process (every service's exported start(config)) on one nats-server, for tests that
 * need the real services but not separate processes (test/observability/trace.nats.test.ts, test/ops/storage.nats.test.ts).
 */
import { loadConfig, type Started } from '@sagamesh/runtime';
import * as gateway from '@sagamesh/gateway';
import * as inventory from '@sagamesh/inventory';
import * as notifications from '@sagamesh/notifications';
import * as orchestrator from '@sagamesh/orchestrator';
import * as orders from '@sagamesh/orders';
import * as payments from '@sagamesh/payments';
import * as shipping from '@sagamesh/shipping';

export interface InProcessPlatform {
  gatewayUrl: string;
  /** Stops every service, the gateway first. */
  stop(): Promise<void>;
}

/** Starts the services on `natsUrl`, free ports, `env` added to every service's (e.g. LOG_LEVEL, JETSTREAM_STORE_MIB); the gateway takes `apiKeys`. */
export async function startInProcessPlatform(natsUrl: string, apiKeys: string, env: Record<string, string> = {}): Promise<InProcessPlatform> {
  const running: Started[] = [];
  const envOf = (extra: Record<string, string> = {}) => ({ NATS_URL: natsUrl, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, ...extra });
  const stop = async () => {
    for (const s of running.reverse()) await s.stop().catch(() => undefined);
  };
  try {
    running.push(await orchestrator.start(loadConfig(orchestrator.OrchestratorConfigSchema, envOf())));
    running.push(await inventory.start(loadConfig(inventory.InventoryConfigSchema, envOf())));
    running.push(await payments.start(loadConfig(payments.PaymentsConfigSchema, envOf())));
    running.push(await shipping.start(loadConfig(shipping.ShippingConfigSchema, envOf())));
    running.push(await notifications.start(loadConfig(notifications.NotificationsConfigSchema, envOf())));
    const ordersSvc = await orders.start(loadConfig(orders.OrdersConfigSchema, envOf()));
    running.push(ordersSvc);
    const gw = await gateway.start(loadConfig(gateway.GatewayConfigSchema, envOf({ API_KEYS: apiKeys, ORDERS_URL: `http://127.0.0.1:${ordersSvc.port}` })));
    running.push(gw);
    return { gatewayUrl: `http://127.0.0.1:${gw.port}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
