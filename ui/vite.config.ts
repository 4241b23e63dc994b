import { defineConfig } from 'vite';

// Served by the gateway under /ui/; JSX compiles to Preact's runtime (no plugin needed for a build).
export default defineConfig({
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
});
