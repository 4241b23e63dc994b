/** Platform overview: the golden signals of every service, from the app's own metrics and from the Linkerd proxies. */
import { MappingType, RowBuilder, type DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { CircuitState, Metrics } from '@sagamesh/contracts';
import { baseDashboard, datasourceVariable, namespaceVariable, NOT_TRAFFIC, q, SAGAMESH_JOBS, serviceVariable, stat, steps, timeseries } from './lib.ts';

const sel = 'namespace=~"$namespace", service=~"$service"';
const http = `${Metrics.httpRequestsTotal}{${sel}, ${NOT_TRAFFIC}}`;
const http5xx = `${Metrics.httpRequestsTotal}{${sel}, ${NOT_TRAFFIC}, code=~"5.."}`;
const latency = (quantile: number) =>
  `histogram_quantile(${quantile}, sum by (service, le) (rate(${Metrics.httpRequestDurationSeconds}_bucket{${sel}, ${NOT_TRAFFIC}}[$__rate_interval])))`;

// Linkerd's proxy metrics (the linkerd-proxy scrape job of charts/values/kube-prometheus-stack.yaml labels them with `deployment`).
const mesh = 'namespace=~"$namespace", deployment=~"$service", direction="inbound"';
const LINKERD = 'Linkerd proxy metrics (response_total, response_latency_ms) exist only for meshed pods in the cluster (make up)';

export function platformOverview(): DashboardBuilder {
  return baseDashboard(
    'sagamesh-overview',
    'sagamesh / Platform overview',
    'Golden signals (traffic, errors, latency, saturation) of every sagamesh service: from the services’ own metrics, and from the Linkerd proxies in the cluster.',
  )
    .withVariable(datasourceVariable())
    .withVariable(namespaceVariable())
    .withVariable(serviceVariable())
    .withRow(new RowBuilder('Health'))
    .withPanel(
      timeseries({
        title: 'Targets up',
        description: 'Prometheus’ `up` for each sagamesh target: 1 when its /metrics was scraped, 0 when the process is down or not answering (the ServiceDown alert fires after a minute of 0).',
        unit: 'none',
        axis: 'up (1) / down (0)',
        min: 0,
        max: 1,
        span: 12,
        queries: [q(`min by (service, pod) (up{job=~"${SAGAMESH_JOBS}", ${sel}})`, '{{service}} {{pod}}')],
      }),
    )
    .withPanel(
      stat({
        title: 'Circuit breakers (gateway)',
        description: 'State of the gateway’s circuit breaker per upstream: closed (calls flow), half-open (one trial call), open (failing fast with 503). Worst replica shown.',
        unit: 'none',
        span: 12,
        height: 8,
        queries: [q(`max by (upstream) (${Metrics.circuitBreakerState}{${sel}})`, '{{upstream}}')],
        thresholds: steps('green', [CircuitState.halfOpen, 'orange'], [CircuitState.open, 'red']),
        mappings: [
          {
            type: MappingType.ValueToText,
            options: {
              [CircuitState.closed]: { text: 'closed', color: 'green' },
              [CircuitState.halfOpen]: { text: 'half-open', color: 'orange' },
              [CircuitState.open]: { text: 'open', color: 'red' },
            },
          },
        ],
      }),
    )
    .withRow(new RowBuilder('Golden signals — app metrics'))
    .withPanel(
      timeseries({
        title: 'Traffic: requests per service',
        description: 'HTTP requests served per second by each service (probes and /metrics scrapes excluded), from sagamesh_http_requests_total.',
        unit: 'reqps',
        axis: 'requests / s',
        queries: [q(`sum by (service) (rate(${http}[$__rate_interval]))`, '{{service}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Errors: 5xx ratio per service',
        description: 'Share of HTTP responses with a 5xx status per service (0 when there are none). 4xx are the caller’s mistakes and are not counted.',
        unit: 'percentunit',
        axis: 'share of requests',
        min: 0,
        queries: [
          q(
            `(sum by (service) (rate(${http5xx}[$__rate_interval])) or sum by (service) (rate(${http}[$__rate_interval])) * 0) / sum by (service) (rate(${http}[$__rate_interval]))`,
            '{{service}}',
          ),
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Latency: p50 and p99 per service',
        description: 'HTTP request duration quantiles per service, estimated from the sagamesh_http_request_duration_seconds histogram (probes and scrapes excluded).',
        unit: 's',
        axis: 'duration',
        queries: [q(latency(0.99), '{{service}} p99'), q(latency(0.5), '{{service}} p50')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Saturation: CPU per process',
        description: 'CPU time each service process (each pod in the cluster) uses per second (1 = one full core), from prom-client’s process_cpu_seconds_total. Under make dev all services share the machine’s cores.',
        unit: 'short',
        axis: 'CPU cores',
        min: 0,
        queries: [q(`sum by (service, pod) (rate(process_cpu_seconds_total{${sel}}[$__rate_interval]))`, '{{service}} {{pod}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Saturation: event loop lag p99',
        description: 'How late the Node.js event loop runs (p99, prom-client’s nodejs_eventloop_lag_p99_seconds). Rising lag means the process is CPU-bound or blocked.',
        unit: 's',
        axis: 'lag',
        min: 0,
        queries: [q(`max by (service, pod) (nodejs_eventloop_lag_p99_seconds{${sel}})`, '{{service}} {{pod}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Saturation: resident memory',
        description: 'Resident set size of each service process, one line per pod in the cluster (process_resident_memory_bytes); compare with the container’s memory limit.',
        unit: 'bytes',
        axis: 'memory',
        min: 0,
        queries: [q(`max by (service, pod) (process_resident_memory_bytes{${sel}})`, '{{service}} {{pod}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Messages handled per service',
        description: 'JetStream messages handled per second by each service, by outcome (ack, nak, dead_letter): the asynchronous side of the traffic.',
        unit: 'ops',
        axis: 'messages / s',
        queries: [q(`sum by (service, outcome) (rate(${Metrics.messagesHandledTotal}{${sel}}[$__rate_interval]))`, '{{service}} {{outcome}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Requests rejected before handling',
        description: 'Requests refused up front, by service and reason: rate_limit (429 with Retry-After), circuit_open (503, the upstream’s breaker is open), overload.',
        unit: 'reqps',
        axis: 'requests / s',
        queries: [q(`sum by (service, reason) (rate(${Metrics.requestsRejectedTotal}{${sel}}[$__rate_interval]))`, '{{service}} {{reason}}')],
      }),
    )
    .withRow(new RowBuilder('Golden signals — Linkerd proxies (cluster)'))
    .withPanel(
      timeseries({
        title: 'Mesh: inbound requests per deployment',
        description: 'Requests per second the Linkerd proxy of each deployment received, whatever the app did with them (includes requests the app never logged).',
        unit: 'reqps',
        axis: 'requests / s',
        span: 8,
        requiresCluster: LINKERD,
        queries: [q(`sum by (deployment) (rate(response_total{${mesh}}[$__rate_interval]))`, '{{deployment}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Mesh: success rate per deployment',
        description: 'Share of inbound responses the Linkerd proxy classified as success (not a 5xx, no transport failure).',
        unit: 'percentunit',
        axis: 'share of responses',
        span: 8,
        max: 1,
        requiresCluster: LINKERD,
        queries: [
          q(
            `sum by (deployment) (rate(response_total{${mesh}, classification="success"}[$__rate_interval])) / sum by (deployment) (rate(response_total{${mesh}}[$__rate_interval]))`,
            '{{deployment}}',
          ),
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Mesh: inbound latency p99 per deployment',
        description: 'p99 of the inbound response latency measured by the Linkerd proxy (response_latency_ms histogram), i.e. including the proxy hop.',
        unit: 'ms',
        axis: 'latency',
        span: 8,
        requiresCluster: LINKERD,
        queries: [q(`histogram_quantile(0.99, sum by (deployment, le) (rate(response_latency_ms_bucket{${mesh}}[$__rate_interval])))`, '{{deployment}} p99')],
      }),
    );
}
