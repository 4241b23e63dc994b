/** Sagas: throughput by outcome, success ratio, in-flight and stuck runs, step latency, compensations and retries. */
import { RowBuilder, type DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { Metrics } from '@sagamesh/contracts';
import { baseDashboard, counterStat, datasourceVariable, labelVariable, latencyQuantiles, namespaceVariable, q, serviceVariable, stat, steps, timeseries } from './lib.ts';

/** The success objective the SagaSuccessRatioBelowObjective alert uses (monitoring/rules/sagamesh.yml). */
export const SAGA_SUCCESS_OBJECTIVE = 0.95;

const sel = 'namespace=~"$namespace", service=~"$service", definition=~"$definition"';
const ended = (extra = '') => `${Metrics.sagaEndedTotal}{${sel}${extra}}`;
/** succeeded / ended per `by`, 0 (not absent) when runs ended but none succeeded. */
const successRatio = (by: string | undefined, window: string) => {
  const sum = by ? `sum by (${by})` : 'sum';
  return `(${sum} (rate(${ended(', outcome="succeeded"')}[${window}])) or ${sum} (rate(${ended()}[${window}])) * 0) / ${sum} (rate(${ended()}[${window}]))`;
};
// The run-store gauges are exported by every engine replica: max() is the true value, not sum().
const gauge = (name: string) => `max by (definition) (${name}{${sel}})`;

export function sagas(): DashboardBuilder {
  return baseDashboard(
    'sagamesh-sagas',
    'sagamesh / Sagas',
    'The saga engine: how many runs start and how they end (succeeded, compensated, failed), what is in flight or stuck, how long each step takes, and which steps compensate or retry.',
  )
    .withVariable(datasourceVariable())
    .withVariable(namespaceVariable())
    .withVariable(serviceVariable(Metrics.sagaStartedTotal))
    .withVariable(
      labelVariable(
        'definition',
        'Definition',
        `label_values(${Metrics.sagaStartedTotal}{namespace=~"$namespace"}, definition)`,
        'Saga definition key: builtin.<name> for orders, k8s.<namespace>.<name> for SagaDefinitions',
      ),
    )
    .withRow(new RowBuilder('Now'))
    .withPanel(
      stat({
        title: 'Runs started',
        description: 'Saga runs started per second (orders placed and Saga resources applied).',
        unit: 'ops',
        queries: [q(`sum(rate(${Metrics.sagaStartedTotal}{${sel}}[$__rate_interval]))`, 'started / s')],
      }),
    )
    .withPanel(
      stat({
        title: 'Success ratio (time range)',
        description: `Share of runs that ended Succeeded over the dashboard’s time range; compensated and failed runs count against it. Objective: ${SAGA_SUCCESS_OBJECTIVE * 100} %.`,
        unit: 'percentunit',
        min: 0,
        max: 1,
        thresholds: steps('red', [SAGA_SUCCESS_OBJECTIVE, 'green']),
        queries: [q(successRatio(undefined, '$__range'), 'success ratio')],
      }),
    )
    .withPanel(
      counterStat({
        per: 'range',
        title: 'Failed runs (time range)',
        description: 'Runs that ended Failed over the time range: a compensation gave up after its retries, an effect may be left behind and a person must look (the SagaFailed alert).',
        counter: ended(', outcome="failed"'),
        legend: 'failed',
      }),
    )
    .withPanel(
      stat({
        title: 'In flight',
        description: 'Runs not yet in a terminal phase, read from the run store (max over engine replicas, summed over definitions).',
        unit: 'short',
        queries: [q(`sum(${gauge(Metrics.sagaInFlight)})`, 'in flight')],
      }),
    )
    .withPanel(
      stat({
        title: 'Stuck',
        description: 'Non-terminal runs past their overall deadline (the SagaStuck alert fires when this stays above 0 for 2 minutes).',
        unit: 'short',
        thresholds: steps('green', [1, 'red']),
        queries: [q(`sum(${gauge(Metrics.sagaStuck)})`, 'stuck')],
      }),
    )
    .withPanel(
      counterStat({
        per: 'second',
        title: 'Compensations',
        description: 'Compensations started per second over all steps: each is one step being undone because a later step failed or timed out.',
        counter: `${Metrics.sagaCompensationsTotal}{${sel}}`,
        legend: 'compensations / s',
      }),
    )
    .withRow(new RowBuilder('Throughput and outcomes'))
    .withPanel(
      timeseries({
        title: 'Runs by outcome',
        description: 'Runs ending per second by outcome (succeeded, compensated, failed), with the rate of runs started for comparison: a gap that stays open is runs piling up.',
        unit: 'ops',
        axis: 'runs / s',
        queries: [
          q(`sum by (outcome) (rate(${ended()}[$__rate_interval]))`, '{{outcome}}'),
          q(`sum(rate(${Metrics.sagaStartedTotal}{${sel}}[$__rate_interval]))`, 'started'),
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Success ratio',
        description: `Share of runs ending Succeeded, per definition; the dashed line is the ${SAGA_SUCCESS_OBJECTIVE * 100} % objective of the SagaSuccessRatioBelowObjective alert.`,
        unit: 'percentunit',
        axis: 'share of runs',
        min: 0,
        max: 1,
        thresholds: steps('red', [SAGA_SUCCESS_OBJECTIVE, 'green']),
        thresholdLine: true,
        queries: [q(successRatio('definition', '$__rate_interval'), '{{definition}}')],
      }),
    )
    .withPanel(
      latencyQuantiles({
        title: 'Run duration',
        description: 'Time from a run’s start to its terminal phase, by outcome (compensated runs include the undoing).',
        histogram: Metrics.sagaDurationSeconds,
        selector: sel,
        by: 'outcome',
      }),
    )
    .withPanel(
      timeseries({
        title: 'In flight and stuck',
        description: 'Runs not yet finished, and those among them past their deadline, per definition (from the run store; max over engine replicas).',
        unit: 'short',
        axis: 'runs',
        min: 0,
        queries: [q(gauge(Metrics.sagaInFlight), '{{definition}} in flight'), q(gauge(Metrics.sagaStuck), '{{definition}} stuck')],
      }),
    )
    .withRow(new RowBuilder('Steps'))
    .withPanel(
      latencyQuantiles({
        title: 'Step duration',
        description: 'Time from a step’s first attempt to its outcome, per step: retries after a timeout make the tail grow.',
        histogram: Metrics.sagaStepDurationSeconds,
        selector: sel,
        by: 'step',
      }),
    )
    .withPanel(
      timeseries({
        title: 'Step outcomes',
        description: 'Steps finishing per second, by step and outcome (succeeded, failed, timed_out).',
        unit: 'ops',
        axis: 'steps / s',
        queries: [q(`sum by (step, outcome) (rate(${Metrics.sagaStepDurationSeconds}_count{${sel}}[$__rate_interval]))`, '{{step}} {{outcome}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Compensations by step',
        description: 'Compensations started per second, by the step being undone: the steps before the one that failed.',
        unit: 'ops',
        axis: 'compensations / s',
        queries: [q(`sum by (step) (rate(${Metrics.sagaCompensationsTotal}{${sel}}[$__rate_interval]))`, '{{step}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Retries by step',
        description: 'Step retries per second: an action retried after its timeout (outcome unknown), or a compensation retried after a failure or timeout.',
        unit: 'ops',
        axis: 'retries / s',
        queries: [q(`sum by (step) (rate(${Metrics.sagaStepRetriesTotal}{${sel}}[$__rate_interval]))`, '{{step}}')],
      }),
    );
}
