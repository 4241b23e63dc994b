/**
 * The workloads as the platform runs them: each entry point with the workspace code it imports (@sagamesh/* and
 * relative imports, TypeScript) bundled into one ES module, `<workspace>/dist/main.mjs`; every other package stays an
 * import resolved from node_modules at run time, so the bundle loads the same single copies (@opentelemetry/api's
 * global tracer, prom-client's registry) as before. Why: Node strips types with a WebAssembly compiler it loads on the
 * first .ts file, ~17 MB of RSS in every process for good (issue 12: each service idles under 100 MB).
 * Each output sits at its source's depth (src/ → dist/), so `import.meta.url`-relative paths hold (the gateway's
 * UI_DIR). Used by startPlatform (make dev, the e2e tests, the bench), scripts/dev.ts and the Dockerfile.
 */
import { build, type Plugin } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every workload: its entry is `<workspace>/src/main.ts`. */
export const WORKLOADS = [
  'services/gateway', 'services/orders', 'services/orchestrator', 'services/inventory', 'services/payments',
  'services/shipping', 'services/notifications', 'operator',
] as const;

/** The bundle a workload runs, relative to the repository: `bundleOf('services/orders')`. */
export const bundleOf = (workspace: string): string => `${workspace}/dist/main.mjs`;

export interface BuildEntry { source: string; output: string }

/**
 * The entries of these workloads (default all), then what every image carries: the tracing preload node-service.sh
 * imports, and the provisioning Job's entry (cdk8s/src/provision.ts runs it from the orchestrator's image).
 */
export function buildEntries(workloads: readonly string[] = WORKLOADS): BuildEntry[] {
  return workloads.map((ws) => ({ source: `${ws}/src/main.ts`, output: bundleOf(ws) })).concat(
    { source: 'libs/runtime/src/otel-preload.ts', output: 'libs/runtime/dist/otel-preload.mjs' },
    { source: 'libs/runtime/src/provision-main.ts', output: 'libs/runtime/dist/provision-main.mjs' },
  );
}

/** Bundles our own TypeScript only: a bare import of anything but @sagamesh/* stays an import. */
const packagesStayExternal: Plugin = {
  name: 'packages-stay-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@sagamesh/') ? undefined : { path: args.path, external: true }));
  },
};

/**
 * Builds the entries given (default all) under `root`; resolves once every output is written. An output is replaced
 * by a rename, and only when it changed, so a process starting meanwhile (tests build in parallel) reads a whole file.
 */
export async function buildWorkloads(root: string, entries: readonly BuildEntry[] = buildEntries()): Promise<void> {
  await Promise.all(entries.map(async (e) => {
    const { outputFiles } = await build({
      absWorkingDir: root,
      entryPoints: [e.source],
      outfile: path.join(root, e.output),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      plugins: [packagesStayExternal],
      // A source map beside each bundle (main.mjs.map), never loaded by node: the bench maps its CPU profiles through
      // it to our source files. Names are not kept (esbuild's keepNames calls a helper at every function creation);
      // error names are set by hand, so a class renamed on a clash only shows under its new name in a stack trace.
      sourcemap: 'external',
      logLevel: 'warning',
      write: false,
    });
    for (const file of outputFiles) {
      if (existsSync(file.path) && readFileSync(file.path, 'utf8') === file.text) continue;
      mkdirSync(path.dirname(file.path), { recursive: true });
      const tmp = `${file.path}.${process.pid}.tmp`;
      writeFileSync(tmp, file.text);
      renameSync(tmp, file.path);
    }
  }));
}

// `node scripts/lib/build.ts [workspace ...]` (the Dockerfile): those workloads (default all), the preload and the
// provisioning entry.
if (import.meta.main) {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((ws) => !(WORKLOADS as readonly string[]).includes(ws));
  if (unknown.length) {
    console.error(`not a workload: ${unknown.join(', ')} (the workloads: ${WORKLOADS.join(', ')})`);
    process.exit(2);
  }
  const entries = buildEntries(wanted.length ? wanted : WORKLOADS);
  await buildWorkloads(fileURLToPath(new URL('../..', import.meta.url)), entries);
  console.log(`built ${entries.map((e) => e.output).join(', ')}`);
}
