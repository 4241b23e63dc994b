/**
 * The Grafana dashboards of sagamesh, generated with @grafana/grafana-foundation-sdk. `npm run generate
 * -w dashboards` writes them to dashboards/<name>.json (committed; the cdk8s app ships each as a
 * ConfigMap for Grafana's sidecar; dashboards/test checks the files match this code).
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { autoscaling } from './autoscaling.ts';
import { jetstream } from './jetstream.ts';
import { render } from './lib.ts';
import { platformOverview } from './platform-overview.ts';
import { sagas } from './sagas.ts';

export { CLUSTER_MARKER } from './lib.ts';
export { SAGA_SUCCESS_OBJECTIVE } from './sagas.ts';
export * from './queries.ts';

/** File name (without .json) → dashboard model. */
export function buildDashboards(): Record<string, Dashboard> {
  return {
    'platform-overview': render(platformOverview()),
    sagas: render(sagas()),
    jetstream: render(jetstream()),
    autoscaling: render(autoscaling()),
  };
}

/** The exact text written to dashboards/<name>.json. */
export function dashboardFileText(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}
