/** JetStream consumers: backlog, redeliveries, outcomes, dead letters and processing time. */
import { RowBuilder, type DashboardBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { Metrics } from '@sagamesh/contracts';
import { baseDashboard, counterStat, datasourceVariable, latencyQuantiles, namespaceVariable, q, serviceVariable, stat, steps, timeseries } from './lib.ts';

const sel = 'namespace=~"$namespace", service=~"$service"';
const handled = (extra = '') => `${Metrics.messagesHandledTotal}{${sel}${extra}}`;
// consumer_pending comes from JetStream consumer info: every replica reports the same number, so max().
const pending = `max by (stream, consumer) (${Metrics.consumerPending}{${sel}})`;

export function jetstream(): DashboardBuilder {
  return baseDashboard(
    'sagamesh-jetstream',
    'sagamesh / JetStream',
    'The durable JetStream consumers of every service: how far behind they are, how messages end (ack, nak, dead letter), redeliveries and how long handling takes.',
  )
    .withVariable(datasourceVariable())
    .withVariable(namespaceVariable())
    .withVariable(serviceVariable(Metrics.messagesHandledTotal))
    .withRow(new RowBuilder('Now'))
    .withPanel(
      stat({
        title: 'Pending messages',
        description: 'Messages in the streams not yet delivered to their consumers, summed over consumers (from consumer info, refreshed every few seconds).',
        unit: 'short',
        span: 6,
        thresholds: steps('green', [100, 'orange'], [1000, 'red']),
        queries: [q(`sum(${pending})`, 'pending')],
      }),
    )
    .withPanel(
      stat({
        title: 'Handled',
        description: 'Messages handled per second over all consumers, whatever the outcome.',
        unit: 'ops',
        span: 6,
        queries: [q(`sum(rate(${handled()}[$__rate_interval]))`, 'handled / s')],
      }),
    )
    .withPanel(
      counterStat({
        per: 'range',
        title: 'Dead letters (time range)',
        description: 'Messages moved to the DEAD_LETTERS stream over the time range (poison, or still failing on the last of MaxDeliver deliveries). Read them with `nats stream view DEAD_LETTERS`.',
        counter: handled(', outcome="dead_letter"'),
        legend: 'dead letters',
        span: 6,
      }),
    )
    .withPanel(
      counterStat({
        per: 'second',
        title: 'Redeliveries',
        description: 'Messages received on a second or later delivery, per second: a handler failed (nak), a process died holding the message, or AckWait passed.',
        counter: `${Metrics.messagesRedeliveredTotal}{${sel}}`,
        legend: 'redeliveries / s',
        span: 6,
      }),
    )
    .withRow(new RowBuilder('Consumers'))
    .withPanel(
      timeseries({
        title: 'Consumer pending',
        description: 'Undelivered messages per consumer (num_pending from JetStream consumer info). Growing while the rate handled stays flat means the consumer cannot keep up (ConsumerLagGrowing).',
        unit: 'short',
        axis: 'messages',
        min: 0,
        queries: [q(pending, '{{stream}} / {{consumer}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Handled by outcome',
        description: 'Messages handled per second per consumer, by outcome: ack (done), nak (redelivered later), dead_letter (given up, moved to DEAD_LETTERS), term (dropped on purpose).',
        unit: 'ops',
        axis: 'messages / s',
        queries: [q(`sum by (consumer, outcome) (rate(${handled()}[$__rate_interval]))`, '{{consumer}} {{outcome}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Redeliveries',
        description: 'Messages received again per second, per consumer (delivery count above 1).',
        unit: 'ops',
        axis: 'messages / s',
        queries: [q(`sum by (service, consumer) (rate(${Metrics.messagesRedeliveredTotal}{${sel}}[$__rate_interval]))`, '{{consumer}}')],
      }),
    )
    .withPanel(
      timeseries({
        title: 'Dead letters',
        description: 'Messages dead-lettered per consumer in each interval: poison messages (bad JSON, schema failure, unknown type or version) and messages still failing on the last delivery (DeadLettersGrowing).',
        unit: 'short',
        axis: 'messages',
        min: 0,
        queries: [q(`sum by (service, consumer) (increase(${handled(', outcome="dead_letter"')}[$__rate_interval]))`, '{{consumer}}')],
      }),
    )
    .withPanel(
      latencyQuantiles({
        title: 'Processing duration',
        description: 'Time one message spends in its handler, per consumer (includes injected latency and the publish of the reply before the ack).',
        histogram: Metrics.messageProcessingDurationSeconds,
        selector: sel,
        by: 'consumer',
        span: 24,
      }),
    );
}
