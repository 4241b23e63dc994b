import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import fc from 'fast-check';
import { SagameshService, SagameshServicePropsError, type SagameshServiceProps, SERVICE_DEFAULTS, validateServiceProps } from '../src/service.ts';

const good: SagameshServiceProps = { name: 'orders', port: 8081 };

function build(props: SagameshServiceProps) {
  const chart = new Chart(Testing.app(), 'test');
  new SagameshService(chart, 'svc', props);
  return Testing.synth(chart) as { kind: string; metadata: { name: string }; spec?: any }[];
}

describe('SagameshService props', () => {
  it('a service keeps answering 5 s after SIGTERM by default (SHUTDOWN_DELAY_MS), or as long as asked', () => {
    const delayOf = (props: SagameshServiceProps) => {
      const d = build(props).find((o) => o.kind === 'Deployment')!;
      return d.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'SHUTDOWN_DELAY_MS')?.value;
    };
    assert.equal(delayOf(good), '5000');
    assert.equal(delayOf({ ...good, shutdownDelaySeconds: 0 }), '0');
  });

  it('accepts the minimal props and applies the documented defaults', () => {
    assert.deepEqual(validateServiceProps(good), []);
    const objs = build(good);
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['AuthorizationPolicy', 'Deployment', 'HorizontalPodAutoscaler', 'MeshTLSAuthentication', 'NetworkPolicy', 'PodDisruptionBudget', 'PodMonitor', 'Server', 'Service', 'ServiceAccount']);
    const d = objs.find((o) => o.kind === 'Deployment')!;
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.image, `sagamesh/orders:${SERVICE_DEFAULTS.imageTag}`);
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(c.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '1000m', memory: '256Mi' } });
    const hpa = objs.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
    assert.equal(hpa.spec.minReplicas, 2, 'two replicas at least: one pod lost leaves one serving');
    assert.equal(hpa.spec.minReplicas, SERVICE_DEFAULTS.autoscaling.minReplicas);
    assert.equal(hpa.spec.maxReplicas, SERVICE_DEFAULTS.autoscaling.maxReplicas);
  });

  it('spreads its replicas across nodes (preferred anti-affinity on its own name label) and keeps one up through a drain', () => {
    const objs = build(good);
    const pod = objs.find((o) => o.kind === 'Deployment')!.spec.template;
    assert.deepEqual(pod.spec.affinity, {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'orders' } } } }],
      },
    });
    assert.equal(pod.metadata.labels['app.kubernetes.io/name'], 'orders', 'the anti-affinity selects labels the pods carry');
    assert.ok(!('cdk8s.io/metadata.addr' in pod.metadata.labels));
    const pdb = objs.find((o) => o.kind === 'PodDisruptionBudget')!;
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.equal(pdb.spec.minAvailable, undefined, 'minAvailable would block a drain of a single-replica service forever');
  });

  it('image pull policy Never (side-loaded images, nothing to pull) and extra pod annotations', () => {
    const objs = build({ ...good, imagePullPolicy: 'Never', podAnnotations: { 'sagamesh.io/config-sha256': 'abc' } });
    const pod = objs.find((o) => o.kind === 'Deployment')!.spec.template;
    assert.equal(pod.spec.containers[0].imagePullPolicy, 'Never');
    assert.equal(pod.metadata.annotations['sagamesh.io/config-sha256'], 'abc');
    assert.equal(pod.metadata.annotations['linkerd.io/inject'], 'enabled');
  });

  it('routes (HTTPRoutes) appear only for a service with callers', () => {
    assert.ok(!build(good).some((o) => o.kind === 'HTTPRoute'));
    assert.equal(build({ ...good, callers: ['gateway'] }).filter((o) => o.kind === 'HTTPRoute').length, 2);
  });

  const cases: [string, Partial<SagameshServiceProps>, RegExp][] = [
    ['bad name', { name: 'Orders_Svc' }, /DNS-1123 label/],
    ['privileged port', { port: 80 }, /cannot bind below 1024/],
    ['Linkerd port', { port: 4143 }, /Linkerd proxy port/],
    ['secret in plain env', { env: { API_KEY: 'x' } }, /move it to secretEnv/],
    ['PORT in env', { env: { PORT: '1' } }, /set from the port prop/],
    ['env in both', { env: { A: '1' }, secretEnv: { A: { secret: 's', key: 'k' } } }, /also set in secretEnv or fieldRefEnv/],
    ['request above limit', { resources: { cpuRequestMillis: 600, cpuLimitMillis: 500, memoryRequestMiB: 1, memoryLimitMiB: 2 } }, /cpuRequestMillis/],
    ['max below min', { autoscaling: { minReplicas: 3, maxReplicas: 2, targetCpuUtilization: 70, scaleDownStabilizationSeconds: 60 } }, /maxReplicas 2 must be an integer >= minReplicas/],
    ['replicas with HPA', { replicas: 3 }, /the HPA owns the replica count/],
    ['self as caller', { callers: ['orders'] }, /is this service itself/],
    ['nodePort out of range', { nodePort: 8080 }, /NodePort range 30000–32767/],
    ['root user', { runAsUser: 0 }, /non-root UID/],
    ['bad timeout', { routes: { requestTimeout: '3 seconds', readRetries: 1, readRetryTimeout: '1s' } }, /duration like 2500ms/],
    ['bad tag', { imageTag: 'dev tag' }, /not a valid image tag/],
    ['bad annotation key', { podAnnotations: { 'a b': 'x' } }, /not an annotation key/],
    ['annotation the service sets', { podAnnotations: { 'linkerd.io/inject': 'disabled' } }, /set by the service itself/],
    ['a drain delay as long as the grace period', { shutdownDelaySeconds: 30 }, /below terminationGracePeriodSeconds \(30\)/],
  ];
  for (const [what, patch, message] of cases) {
    it(`refuses ${what} in the constructor, saying how to fix it`, () => {
      assert.throws(() => build({ ...good, ...patch }), (err: unknown) => err instanceof SagameshServicePropsError && message.test(err.message));
    });
  }

  it('reports every problem at once', () => {
    const problems = validateServiceProps({ name: 'X', port: 1, nodePort: 1 });
    assert.equal(problems.length, 3);
  });

  it('any valid name/port/scaling builds, and the objects carry that name and port', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/);
    const port = fc.integer({ min: 1024, max: 65535 }).filter((p) => ![4140, 4143, 4190, 4191].includes(p));
    const scaling = fc.record({ min: fc.integer({ min: 1, max: 10 }), extra: fc.integer({ min: 0, max: 10 }), target: fc.integer({ min: 1, max: 100 }), down: fc.integer({ min: 0, max: 3600 }) });
    fc.assert(
      fc.property(name, port, scaling, (n, p, s) => {
        const props: SagameshServiceProps = { name: n, port: p, autoscaling: { minReplicas: s.min, maxReplicas: s.min + s.extra, targetCpuUtilization: s.target, scaleDownStabilizationSeconds: s.down } };
        assert.deepEqual(validateServiceProps(props), []);
        const objs = build(props);
        const d = objs.find((o) => o.kind === 'Deployment')!;
        assert.equal(d.metadata.name, n);
        assert.equal(d.spec.template.spec.containers[0].ports[0].containerPort, p);
        assert.equal(objs.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec.behavior.scaleDown.stabilizationWindowSeconds, s.down);
      }),
      { numRuns: 40 },
    );
  });

  it('a fixed replica count means no HPA', () => {
    const objs = build({ ...good, autoscaling: false, replicas: 3 });
    assert.ok(!objs.some((o) => o.kind === 'HorizontalPodAutoscaler'));
    assert.equal(objs.find((o) => o.kind === 'Deployment')!.spec.replicas, 3);
  });
});
