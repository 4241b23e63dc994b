/** Autoscaling: what each HPA wants and has, the CPU it scales on, and the load that drives it. */
import { RowBuilder, type DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { Metrics } from '@sagamesh/contracts';
import { baseDashboard, datasourceVariable, namespaceVariable, NOT_TRAFFIC, q, serviceVariable, timeseries } from './lib.ts';

const sel = 'namespace=~"$namespace", service=~"$service"';
// Each service's HPA and Deployment are named after it (cdk8s SagameshService); its pods are <name>-<hash>-<hash>.
const hpa = 'namespace=~"$namespace", horizontalpodautoscaler=~"$service"';
const appPods = 'namespace=~"$namespace", pod=~"$service-[a-z0-9]+-[a-z0-9]+", container="app"';
const byService = (expr: string) => `label_replace(${expr}, "service", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+")`;
const KSM = 'kube-state-metrics (HPA and Deployment state) runs only in the cluster (make up)';
const CADVISOR = 'container CPU (cAdvisor) and requests (kube-state-metrics) exist only in the cluster (make up)';
const requests = `sum by (service) (rate(${Metrics.httpRequestsTotal}{${sel}, ${NOT_TRAFFIC}}[$__rate_interval]))`;

export function autoscaling(): DashboardBuilder {
  return baseDashboard(
    'sagamesh-autoscaling',
    'sagamesh / Autoscaling',
    'The HorizontalPodAutoscalers during `make load`: desired vs current replicas, the CPU utilization they scale on against its target, and the request rate that drives it.',
  )
    .withVariable(datasourceVariable())
    .withVariable(namespaceVariable())
    .withVariable(serviceVariable())
    .withRow(new RowBuilder('HorizontalPodAutoscalers (cluster)'))
    .withPanel(
      timeseries({
        title: 'Replicas: desired vs current',
        description: 'Per HPA: the replica count it asks for (desired), what the Deployment has (current), and its ceiling (max). Desired above current is a scale-out in progress; desired at max means the HPA can do no more.',
        unit: 'short',
        axis: 'replicas',
        min: 0,
        requiresCluster: KSM,
        queries: [
          q(`max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{${hpa}})`, '{{horizontalpodautoscaler}} desired'),
          q(`max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{${hpa}})`, '{{horizontalpodautoscaler}} current'),
          q(`max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{${hpa}})`, '{{horizontalpodautoscaler}} max'),
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'CPU utilization vs target',
        description: 'CPU used by the app containers of each service divided by their CPU requests — what the HPA’s container-CPU metric measures — against the HPA’s target utilization.',
        unit: 'percentunit',
        axis: 'share of CPU request',
        min: 0,
        requiresCluster: CADVISOR,
        queries: [
          q(
            `sum by (service) (${byService(`rate(container_cpu_usage_seconds_total{${appPods}}[$__rate_interval])`)}) / sum by (service) (${byService(`kube_pod_container_resource_requests{${appPods}, resource="cpu"}`)})`,
            '{{service}} utilization',
          ),
          q(
            `max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_target_metric{${hpa}, metric_name="cpu", metric_target_type="utilization"}) / 100`,
            '{{horizontalpodautoscaler}} target',
          ),
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Available pods',
        description: 'Ready pods per Deployment (kube_deployment_status_replicas_available): the capacity actually serving.',
        unit: 'short',
        axis: 'pods',
        min: 0,
        requiresCluster: KSM,
        queries: [q(`max by (deployment) (kube_deployment_status_replicas_available{namespace=~"$namespace", deployment=~"$service"})`, '{{deployment}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Requests per available pod',
        description: 'HTTP request rate per service divided by its ready pods: it should fall back after a scale-out.',
        unit: 'reqps',
        axis: 'requests / s per pod',
        min: 0,
        requiresCluster: KSM,
        queries: [
          q(
            `${requests} / on (service) label_replace(max by (deployment) (kube_deployment_status_replicas_available{namespace=~"$namespace", deployment=~"$service"}), "service", "$1", "deployment", "(.+)")`,
            '{{service}}',
          ),
        ],
      }),
    )
    .withRow(new RowBuilder('Load (app metrics)'))
    .withPanel(
      timeseries({
        title: 'Request rate per service',
        description: 'HTTP requests per second per service, summed over its pods (probes and scrapes excluded): the load that makes the CPU, and so the HPA, move.',
        unit: 'reqps',
        axis: 'requests / s',
        queries: [q(requests, '{{service}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Process CPU per service',
        description: 'CPU the service processes report themselves (prom-client process_cpu_seconds_total), summed over pods; available without a cluster.',
        unit: 'short',
        axis: 'CPU cores',
        min: 0,
        queries: [q(`sum by (service) (rate(process_cpu_seconds_total{${sel}}[$__rate_interval]))`, '{{service}}')],
      }),
    );
}
