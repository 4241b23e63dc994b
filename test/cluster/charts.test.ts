import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_CLUSTER } from '../../cdk8s/src/cluster.ts';
import { readRuleFiles } from '../../cdk8s/src/main.ts';
import { PLATFORM_DEFAULTS, synthPlatform } from '../../cdk8s/src/platform.ts';
import { type ChartFixture, checkValues } from './values-check.ts';
import { pinnedCharts, readEnvFile } from './support.ts';
import { REPO_ROOT } from '../../scripts/lib/tools.ts';

const charts = pinnedCharts();
const fixtureOf = (chart: string, version: string): ChartFixture =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'charts', 'fixtures', `${chart}-${version}.keys.json`), 'utf8'));
const valuesOf = (chart: string): any => parse(readFileSync(path.join(REPO_ROOT, 'charts', 'values', `${chart}.yaml`), 'utf8'));

describe('charts: pinned versions, values files and their fixtures', () => {
  it('pins every chart exactly once, each with a values file and a fixture naming that version', () => {
    // NATS is the platform's own construct (cdk8s/src/nats.ts), not a chart.
    assert.deepEqual(charts.map((c) => c.chart).sort(), ['kube-prometheus-stack', 'linkerd-control-plane', 'linkerd-crds', 'metrics-server']);
    for (const { chart, version } of charts) {
      assert.match(version, /^\d+\.\d+\.\d+$/, `${chart}: an exact version, not a range`);
      const fixture = fixtureOf(chart, version);
      assert.equal(fixture.chart, chart);
      assert.equal(fixture.version, version);
      assert.match(fixture.source, new RegExp(version.replaceAll('.', '\\.')), `${chart}: the fixture names where its keys come from, at this version`);
    }
    const valueFiles = readdirSync(path.join(REPO_ROOT, 'charts', 'values')).map((f) => f.replace(/\.yaml$/, '')).sort();
    assert.deepEqual(valueFiles, charts.map((c) => c.chart).sort(), 'no values file without a pinned chart');
    const fixtures = readdirSync(path.join(REPO_ROOT, 'charts', 'fixtures')).sort();
    assert.deepEqual(fixtures, charts.map((c) => `${c.chart}-${c.version}.keys.json`).sort(), 'no stale fixture of an unpinned version');
  });

  for (const { chart, version } of charts) {
    it(`${chart} ${version}: every key the values file sets is documented by the chart, with its type`, () => {
      assert.deepEqual(checkValues(valuesOf(chart), fixtureOf(chart, version)), []);
    });
  }

  it('the checker catches an undocumented key and a wrong type (so the checks above can fail)', () => {
    const fixture = fixtureOf('metrics-server', readEnvFile('charts/versions.env').METRICS_SERVER_CHART_VERSION!);
    const problems = checkValues({ replicas: 'two', replica: 2, resources: { anything: { below: 1 } } }, fixture);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /replicas: metrics-server \S+ documents a integer, the values file has a string/);
    assert.match(problems.join('\n'), /replica: not a key that metrics-server/);
  });

  it('the keys scripts/up.sh sets with --set-file are documented by the Linkerd control plane chart', () => {
    const upSh = readFileSync(path.join(REPO_ROOT, 'scripts', 'up.sh'), 'utf8');
    const keys = [...upSh.matchAll(/--set-file ([A-Za-z.]+)=/g)].map((m) => m[1]!);
    assert.deepEqual(keys, ['identityTrustAnchorsPEM', 'identity.issuer.tls.crtPEM', 'identity.issuer.tls.keyPEM']);
    const fixture = fixtureOf('linkerd-control-plane', readEnvFile('charts/versions.env').LINKERD_CONTROL_PLANE_CHART_VERSION!);
    for (const k of keys) assert.equal(fixture.keys[k.replaceAll('.', '/')], 'string', k);
  });
});

describe('charts: the values agree with the app and the cluster', () => {
  const kps = valuesOf('kube-prometheus-stack');

  it('Prometheus runs as the service account the Linkerd policy authorizes, meshed, and selects monitors everywhere', () => {
    assert.equal(kps.prometheus.serviceAccount.name, DEFAULT_CLUSTER.prometheusServiceAccount);
    assert.equal(kps.prometheus.prometheusSpec.podMetadata.annotations['linkerd.io/inject'], 'enabled');
    assert.equal(kps.prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues, false);
    assert.equal(kps.prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues, false);
    assert.deepEqual(kps.prometheus.prometheusSpec.podMonitorNamespaceSelector, {});
  });

  it('Prometheus loads the PrometheusRule the cdk8s app ships: rules with any labels, from every namespace', () => {
    const spec = kps.prometheus.prometheusSpec;
    // true (the chart default) would select only rules labelled release=<release name>; the cdk8s rule sets no such label.
    assert.equal(spec.ruleSelectorNilUsesHelmValues, false);
    // Unset: the Prometheus gets ruleSelector {} (every rule) and the chart's ruleNamespaceSelector {} (every namespace).
    assert.equal(spec.ruleSelector, undefined);
    assert.ok(spec.ruleNamespaceSelector === undefined || Object.keys(spec.ruleNamespaceSelector).length === 0);
    const rules = synthPlatform({ ...PLATFORM_DEFAULTS, crds: [], dashboards: [], ruleFiles: readRuleFiles(path.join(REPO_ROOT, 'monitoring', 'rules')) })
      .flatMap((f) => f.objects)
      .filter((o) => o.kind === 'PrometheusRule');
    assert.equal(rules.length, 1, 'the cdk8s app ships the rules');
  });

  it('Grafana finds the dashboards ConfigMaps the cdk8s app labels, in every namespace, on the NodePort kind maps', () => {
    const d = kps.grafana.sidecar.dashboards;
    assert.deepEqual([d.enabled, d.label, d.labelValue, d.searchNamespace], [true, 'grafana_dashboard', '1', 'ALL']);
    const kind = parse(readFileSync(path.join(REPO_ROOT, 'kind-config.yaml'), 'utf8'));
    const mapped = kind.nodes[0].extraPortMappings.map((m: any) => m.containerPort);
    assert.ok(mapped.includes(kps.grafana.service.nodePort));
  });

  it('metrics-server trusts kind kubelets; Linkerd leaves the Gateway API CRDs to up.sh', () => {
    assert.ok(valuesOf('metrics-server').args.includes('--kubelet-insecure-tls'));
    assert.equal(valuesOf('linkerd-crds').installGatewayAPI, false);
    assert.match(readEnvFile('charts/versions.env').GATEWAY_API_VERSION!, /^v\d+\.\d+\.\d+$/);
  });
});
