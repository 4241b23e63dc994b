/** `npm run generate -w dashboards`: writes every dashboard to dashboards/<name>.json. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDashboards, dashboardFileText } from './index.ts';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const [name, d] of Object.entries(buildDashboards())) {
  writeFileSync(path.join(dir, `${name}.json`), dashboardFileText(d));
  console.log(`dashboards/${name}.json  uid ${d.uid}  "${d.title}"  ${(d.panels ?? []).length} panels`);
}
