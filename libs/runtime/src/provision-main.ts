/**
 * `node libs/runtime/src/provision-main.ts`: provisions every platform stream and bucket as the admin identity, then
 * exits 0 (the cluster's `nats-provision` Job runs it in the orchestrator's image). Waits for NATS and for JetStream to
 * form; a bad configuration or a refusal exits 1 with the reason.
 */
import { ProvisionConfigSchema } from './config.ts';
import { loadConfigOrExit } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { connectNats } from './nats.ts';
import { provisionPlatform } from './provision.ts';

const config = loadConfigOrExit('provision', ProvisionConfigSchema);
const log = createLogger('provision', config.LOG_LEVEL);
try {
  const nc = await connectNats({ servers: config.NATS_URL, name: 'provision', log, user: config.NATS_USER, pass: config.NATS_PASSWORD });
  try {
    await provisionPlatform(nc, { replicas: config.JETSTREAM_REPLICAS, storeMiB: config.JETSTREAM_STORE_MIB, log });
  } finally {
    await nc.close();
  }
} catch (err) {
  log.fatal({ err }, 'provisioning failed');
  process.exit(1);
}
