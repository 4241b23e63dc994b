/**
 * The layering rules (README "Layout"), checked in CI so they hold without anyone remembering them. Each layer imports
 * only what is below it:
 *   libs/contracts  →  libs/runtime  →  libs/participant  →  services/*, operator  (libs/testing: tests only)
 * and the pure cores (the saga transition function, the reconcile decision) import nothing with I/O.
 */
const IO = '^(node:)?(fs|net|http|https|http2|dgram|child_process|cluster|worker_threads|dns|tls)(/|$)|@nats-io|express|@kubernetes/client-node|pino|prom-client';
/** A forbidden dependency: modules under `from` may not import modules matching `to` (unless they match `toNot`). */
const forbid = (name, comment, from, to, toNot) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to, ...(toNot ? { pathNot: toNot } : {}) } });
const ABOVE_RUNTIME = ['^services/', '^operator/'];

module.exports = {
  forbidden: [
    forbid('contracts-pure', 'libs/contracts holds names, schemas and pure helpers only: no I/O and nothing of ours above it.',
      '^libs/contracts/src/', [IO, '^libs/(?!contracts/)', ...ABOVE_RUNTIME]),
    forbid('runtime-below-saga', 'libs/runtime is what every process runs on: it knows the contracts, never the participant SDK, a service or the operator.',
      '^libs/runtime/src/', ['^libs/(participant|testing)/', ...ABOVE_RUNTIME]),
    forbid('participant-below-workloads', 'libs/participant (the saga participant SDK) builds on the runtime and the contracts; it depends on no workload.',
      '^libs/participant/src/', ['^libs/testing/', ...ABOVE_RUNTIME]),
    forbid('testing-is-for-tests', 'libs/testing starts real nats-servers and kube-apiservers for tests; no workload, library or manifest code ships it.',
      '^(libs/(contracts|runtime|participant)|services/[^/]+|operator|cdk8s|dashboards)/src/', '^libs/testing/'),
    forbid('testing-below-workloads', 'The test rigs use the libraries, never a workload: a service is tested through them, not the other way round.',
      '^libs/testing/src/', ['^libs/participant/', ...ABOVE_RUNTIME]),
    forbid('service-imports-service', 'A service never imports another service: they meet through messages and HTTP (shared names live in libs/contracts).',
      '^services/([^/]+)/src/', '^services/([^/]+)/', '^services/$1/'),
    forbid('engine-core-pure', 'The saga transition function imports nothing with I/O (time comes in as an input), and no library but the contracts.',
      '^services/orchestrator/src/core/', [IO, '^libs/(?!contracts/)']),
    forbid('reconcile-decision-pure', "The operator's reconcile decision (and the conditions, status and Events it derives) imports nothing with I/O, and no library but the contracts.",
      '^operator/src/(decision|conditions|status|transition-events)\\.ts$', [IO, '^libs/(?!contracts/)']),
    forbid('operator-imports-no-service', "The operator talks to the engine over NATS through the contracts and the participant SDK's engine client; it imports no service's internals.",
      '^operator/src/', '^services/'),
    forbid('cdk8s-no-runtime', "The cdk8s app imports no runtime code: only the contracts (names, ports, CRD source) and the processes' pure config schemas (to check the workloads' env).",
      '^cdk8s/src/', ['^libs/(?!contracts/)', ...ABOVE_RUNTIME], ['^services/[^/]+/src/config\\.ts$', '^operator/src/config\\.ts$', '^libs/(runtime|participant)/src/config\\.ts$']),
    forbid('ui-talks-http', "The saga explorer (ui/) runs in a browser: it reaches the platform over the gateway's HTTP API and shares only the contracts' types and explorer names.",
      '^ui/src/', ['^libs/(?!contracts/)', ...ABOVE_RUNTIME, '^(node:)?[a-z_]+$']),
    { ...forbid('ui-no-schemas', "The page imports the contracts' values only from @sagamesh/contracts/explorer (no schema library in the bundle); types from anywhere in them.",
      '^ui/src/', '^libs/contracts/src/(?!explorer\\.ts$)'), to: { path: '^libs/contracts/src/(?!explorer\\.ts$)', dependencyTypesNot: ['type-only'] } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(test|dist|imports)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] },
  },
};
