/**
 * Reading a dashboard's JSON model back: its panels' PromQL, template variables substituted the way
 * Grafana would for a Prometheus query, and the cluster-only marker. Pure; used by the tests.
 */
import { CLUSTER_MARKER } from './lib.ts';

export interface PanelQuery {
  dashboard: string;
  panelId: number;
  panel: string;
  refId: string;
  /** The expression as stored in the dashboard (with $variables). */
  expr: string;
  /** Why the panel only has data in a cluster, when it is marked so. */
  requiresCluster?: string;
}

interface PanelJson {
  id?: number;
  type?: string;
  title?: string;
  description?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: PanelJson[];
}

/** Every Prometheus target of every panel (rows' nested panels included), from a dashboard model or its parsed JSON. */
export function panelQueries(model: object): PanelQuery[] {
  const dashboard = model as { title?: string; panels?: PanelJson[] };
  const out: PanelQuery[] = [];
  const visit = (panels: PanelJson[]) => {
    for (const p of panels) {
      if (p.panels) visit(p.panels);
      const requiresCluster = CLUSTER_MARKER.exec(p.description ?? '')?.[1];
      for (const t of p.targets ?? []) {
        if (t.expr === undefined) continue;
        out.push({
          dashboard: dashboard.title ?? '?',
          panelId: p.id ?? 0,
          panel: p.title ?? '?',
          refId: t.refId ?? '?',
          expr: t.expr,
          ...(requiresCluster ? { requiresCluster } : {}),
        });
      }
    }
  };
  visit(dashboard.panels ?? []);
  return out;
}

/** Values for the template variables when a query is run outside Grafana ("All" everywhere). */
export const DEFAULT_VARIABLES: Readonly<Record<string, string>> = {
  namespace: '.*',
  service: '.*',
  definition: '.*',
  __rate_interval: '30s',
  __interval: '10s',
  __range: '5m',
};

/**
 * Substitutes `$name` and `${name}` as Grafana does. `$1`-style names are label_replace back-references,
 * not variables, and stay; any other unknown variable throws (a query the test could not run as Grafana would).
 */
export function substituteVariables(expr: string, values: Readonly<Record<string, string>> = DEFAULT_VARIABLES): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    if (Object.hasOwn(values, name)) return values[name]!;
    if (/^\d+$/.test(name)) return whole;
    throw new Error(`no value for template variable ${whole} in: ${expr}`);
  });
}
