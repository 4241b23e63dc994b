/**
 * The images of the offline cluster's add-ons, `sagamesh-build/<name>:<pin>`, named from the pins in
 * tools/versions.env. scripts/cluster/addon-images.sh builds the same names from the same keys
 * (cdk8s/test/addons.test.ts holds the two together).
 */

export interface AddonImages {
  /** nats-server from the pinned module (the platform's NATS construct uses it offline). */
  readonly natsServer: string;
  readonly prometheus: string;
  readonly metricsServer: string;
  readonly kubeStateMetrics: string;
}

/** Image name and the tools/versions.env key that is its tag. */
export const ADDON_IMAGE_PINS: Readonly<Record<keyof AddonImages, { readonly name: string; readonly versionKey: string }>> = {
  natsServer: { name: 'nats-server', versionKey: 'NATS_SERVER_VERSION' },
  prometheus: { name: 'prometheus', versionKey: 'PROMETHEUS_APP_VERSION' },
  metricsServer: { name: 'metrics-server', versionKey: 'METRICS_SERVER_VERSION' },
  kubeStateMetrics: { name: 'kube-state-metrics', versionKey: 'KUBE_STATE_METRICS_VERSION' },
};

/** The KEY=value lines of tools/versions.env (comments and blank lines skipped). */
export function parseVersionsEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(\S+)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function addonImages(versions: Readonly<Record<string, string>>): AddonImages {
  const missing = Object.values(ADDON_IMAGE_PINS).filter((p) => !versions[p.versionKey]).map((p) => p.versionKey);
  if (missing.length > 0) throw new Error(`tools/versions.env has no ${missing.join(', ')}: the offline add-on images are tagged with them`);
  const image = (k: keyof AddonImages) => `sagamesh-build/${ADDON_IMAGE_PINS[k].name}:${versions[ADDON_IMAGE_PINS[k].versionKey]}`;
  return { natsServer: image('natsServer'), prometheus: image('prometheus'), metricsServer: image('metricsServer'), kubeStateMetrics: image('kubeStateMetrics') };
}
