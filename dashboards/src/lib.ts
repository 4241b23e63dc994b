/**
 * Building blocks shared by the dashboards: the Prometheus datasource variable, the namespace/service
 * variables, panels that always carry a unit, an axis label and a description, and the marker of
 * panels that only have data in a cluster.
 *
 * Cluster marker (decided here, read by the query test): a panel whose series come only from a
 * cluster (Linkerd proxies, kube-state-metrics, cAdvisor) ends its description with
 * `[requires cluster: <reason>]`. It lives in the description text because that is what survives
 * the SDK, Grafana's provisioning and a save from the UI, and because the person looking at an empty
 * panel under `make dev` then reads why in the panel's info tooltip.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** The jobs of sagamesh's own targets: `sagamesh` locally, `<namespace>/<name>` from the cluster's PodMonitors. */
export const SAGAMESH_JOBS = 'sagamesh|sagamesh/.+';
/** Probe and scrape routes: not traffic. */
export const NOT_TRAFFIC = 'route!~"/metrics|/livez|/readyz"';

export const CLUSTER_MARKER = /\[requires cluster: ([^\]]+)\]\s*$/;

export function describe(text: string, requiresCluster?: string): string {
  return requiresCluster ? `${text}\n\n[requires cluster: ${requiresCluster}]` : text;
}

export interface Query {
  readonly expr: string;
  readonly legend: string;
}

export const q = (expr: string, legend: string): Query => ({ expr, legend });

function target(query: Query, i: number): DataqueryBuilder {
  return new DataqueryBuilder()
    .datasource(DATASOURCE)
    .refId(String.fromCharCode(65 + i))
    .expr(query.expr)
    .legendFormat(query.legend)
    .range();
}

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  /** Grafana unit id (reqps, s, percentunit, …). */
  readonly unit: string;
  readonly queries: readonly Query[];
  /** Why this panel has data only in a cluster; absent when the local platform feeds it. */
  readonly requiresCluster?: string;
  readonly span?: number;
  readonly height?: number;
  readonly min?: number;
  readonly max?: number;
  readonly thresholds?: readonly dashboard.Threshold[];
}

export interface TimeseriesSpec extends PanelSpec {
  /** What the y axis counts, e.g. "requests / s". */
  readonly axis: string;
  /** Draw the thresholds as a dashed line (an objective). */
  readonly thresholdLine?: boolean;
  readonly stacked?: boolean;
}

const thresholds = (steps: readonly dashboard.Threshold[]) => new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([...steps]);

export function timeseries(p: TimeseriesSpec): TimeseriesPanelBuilder {
  const b = new TimeseriesPanelBuilder()
    .title(p.title)
    .description(describe(p.description, p.requiresCluster))
    .datasource(DATASOURCE)
    .unit(p.unit)
    .axisLabel(p.axis)
    .span(p.span ?? 12)
    .height(p.height ?? 8)
    .lineWidth(1)
    .fillOpacity(p.stacked ? 30 : 10)
    .showPoints(common.VisibilityMode.Never)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).calcs([]))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .targets(p.queries.map(target));
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  if (p.stacked) b.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (p.thresholds) {
    b.thresholds(thresholds(p.thresholds));
    if (p.thresholdLine) b.thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  }
  return b;
}

export interface StatSpec extends PanelSpec {
  readonly mappings?: dashboard.ValueMapping[];
}

export function stat(p: StatSpec): StatPanelBuilder {
  const b = new StatPanelBuilder()
    .title(p.title)
    .description(describe(p.description, p.requiresCluster))
    .datasource(DATASOURCE)
    .unit(p.unit)
    .span(p.span ?? 4)
    .height(p.height ?? 4)
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .thresholds(thresholds(p.thresholds ?? steps('green')))
    .targets(p.queries.map(target));
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  if (p.mappings) b.mappings(p.mappings);
  return b;
}

/** Threshold steps: the first applies from -∞ (its value is null). */
export function steps(base: string, ...rest: [number, string][]): dashboard.Threshold[] {
  return [{ value: null, color: base }, ...rest.map(([value, color]) => ({ value, color }))];
}

const all: dashboard.VariableOption = { text: 'All', value: '$__all', selected: true };

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus').description('The Prometheus that scrapes sagamesh');
}

/** A multi-value label variable with "All" = `.*` (so series without the label still match). */
export function labelVariable(name: string, label: string, query: string, description: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .description(description)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current(all);
}

export function namespaceVariable(): dashboard.QueryVariableBuilder {
  return labelVariable(
    'namespace',
    'Namespace',
    'label_values(sagamesh_http_requests_total, namespace)',
    'Kubernetes namespace of the services (empty under make dev: "All" matches series without the label)',
  );
}

export function serviceVariable(metric = 'sagamesh_http_requests_total'): dashboard.QueryVariableBuilder {
  return labelVariable('service', 'Service', `label_values(${metric}{namespace=~"$namespace"}, service)`, 'sagamesh service (the app label `service`)');
}

export function baseDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['sagamesh'])
    .editable()
    .timezone('browser')
    .time({ from: 'now-30m', to: 'now' })
    .refresh('10s')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(new dashboard.DashboardLinkBuilder('sagamesh').type(dashboard.DashboardLinkType.Dashboards).tags(['sagamesh']).asDropdown(true).includeVars(true).keepTime(true));
}

/** The dashboard model, with panel ids numbered in order (the SDK leaves them unset). */
export function render(b: dashboard.DashboardBuilder): dashboard.Dashboard {
  const d = b.build();
  (d.panels ?? []).forEach((p, i) => {
    (p as { id?: number }).id = i + 1;
  });
  return d;
}
