/** The dependency rules of DESIGN.md, checked in CI so they hold without anyone remembering them. */
const IO = '^(node:)?(fs|net|http|https|http2|dgram|child_process|cluster|worker_threads|dns|tls)(/|$)|@nats-io|express|@kubernetes/client-node|pino|prom-client';
module.exports = {
  forbidden: [
    {
      name: 'service-imports-service',
      comment: 'A service never imports another service: they meet through messages and HTTP (shared names live in services/contracts).',
      severity: 'error',
      from: { path: '^services/([^/]+)/src/', pathNot: '^services/(contracts|kit)/' },
      to: { path: '^services/([^/]+)/', pathNot: ['^services/(contracts|kit)/', '^services/$1/'] },
    },
    {
      name: 'kit-imports-service',
      comment: 'The kit is shared by every service; it depends on no service.',
      severity: 'error',
      from: { path: '^services/kit/src/' },
      to: { path: '^services/', pathNot: '^services/(contracts|kit)/' },
    },
    {
      name: 'contracts-pure',
      comment: 'services/contracts holds names and schemas only: no I/O, no service, no kit.',
      severity: 'error',
      from: { path: '^services/contracts/src/' },
      to: { path: [IO, '^services/(?!contracts/)', '^operator/'] },
    },
    {
      name: 'engine-core-pure',
      comment: 'The saga transition function imports nothing with I/O (time comes in as an input).',
      severity: 'error',
      from: { path: '^services/orchestrator/src/core/' },
      to: { path: [IO, '^services/kit/'] },
    },
    {
      name: 'reconcile-decision-pure',
      comment: "The operator's reconcile decision imports nothing with I/O.",
      severity: 'error',
      from: { path: '^operator/src/decision' },
      to: { path: [IO, '^services/kit/'] },
    },
    {
      name: 'operator-uses-contracts-only',
      comment: "The operator talks to the engine over NATS through the contracts; it imports no service's internals.",
      severity: 'error',
      from: { path: '^operator/src/' },
      to: { path: '^services/', pathNot: '^services/(contracts|kit)/' },
    },
    {
      name: 'cdk8s-no-runtime',
      comment: 'The cdk8s app imports no runtime code: only the contracts (names, ports, CRD source).',
      severity: 'error',
      from: { path: '^cdk8s/src/' },
      to: { path: ['^services/(?!contracts/)', '^operator/'] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(test|dist|imports)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] },
  },
};
