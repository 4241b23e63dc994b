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

/** What both panel builders offer for the settings every panel spec has. */
interface PanelBuilderBase<B> {
  title(title: string): B;
  description(description: string): B;
  datasource(ref: common.DataSourceRef): B;
  unit(unit: string): B;
  span(span: number): B;
  height(height: number): B;
  min(min: number): B;
  max(max: number): B;
  targets(targets: DataqueryBuilder[]): B;
}

/** The settings of a spec every panel has (the size defaults per kind), and its queries. */
function withSpec<B extends PanelBuilderBase<B>>(b: B, p: PanelSpec, size: { span: number; height: number }): B {
  b.title(p.title)
    .description(describe(p.description, p.requiresCluster))
    .datasource(DATASOURCE)
    .unit(p.unit)
    .span(p.span ?? size.span)
    .height(p.height ?? size.height)
    .targets(p.queries.map(target));
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  return b;
}

export function timeseries(p: TimeseriesSpec): TimeseriesPanelBuilder {
  const b = withSpec(new TimeseriesPanelBuilder(), p, { span: 12, height: 8 })
    .axisLabel(p.axis)
    .lineWidth(1)
    .fillOpacity(p.stacked ? 30 : 10)
    .showPoints(common.VisibilityMode.Never)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).calcs([]))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
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
  const b = withSpec(new StatPanelBuilder(), p, { span: 4, height: 4 })
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .thresholds(thresholds(p.thresholds ?? steps('green')));
  if (p.mappings) b.mappings(p.mappings);
  return b;
}

/** The latency quantiles the dashboards draw. */
const QUANTILES = [0.5, 0.95, 0.99] as const;

/**
 * A histogram's p50 / p95 / p99 over time, one series per quantile and value of `by` (e.g. per step): its title
 * ends in "p50 / p95 / p99", its unit is seconds.
 */
export function latencyQuantiles(p: { title: string; description: string; histogram: string; selector: string; by: string; span?: number }): TimeseriesPanelBuilder {
  return timeseries({
    title: `${p.title} p50 / p95 / p99`,
    description: p.description,
    unit: 's',
    axis: 'duration',
    span: p.span,
    queries: QUANTILES.map((quantile) =>
      q(`histogram_quantile(${quantile}, sum by (${p.by}, le) (rate(${p.histogram}_bucket{${p.selector}}[$__rate_interval])))`, `{{${p.by}}} p${quantile * 100}`),
    ),
  });
}

/**
 * A counter's events, summed over its series, as a stat that shows 0 (not "No data") when there were none: per
 * second, or over the dashboard's time range — then red from the first, as for events that should not happen.
 */
export function counterStat(p: { title: string; description: string; counter: string; legend: string; per: 'second' | 'range'; span?: number }): StatPanelBuilder {
  const perRange = p.per === 'range';
  const sum = perRange ? `sum(increase(${p.counter}[$__range]))` : `sum(rate(${p.counter}[$__rate_interval]))`;
  return stat({
    title: p.title,
    description: p.description,
    unit: perRange ? 'short' : 'ops',
    span: p.span,
    thresholds: perRange ? steps('green', [1, 'red']) : undefined,
    queries: [q(`${sum} or vector(0)`, p.legend)],
  });
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
