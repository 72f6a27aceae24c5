// `npm run bench [name…]`: runs every bench/*.bench.ts (or those matching the filters) in turn.
// Each benchmark prints its own figures (medians over repeats) and, where a peer is available,
// the ratio to it measured in the same run.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filters.length || filters.some((x) => f.includes(x)))
  .sort();
if (!files.length) {
  console.error('no benchmarks matched');
  process.exit(1);
}
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default?: () => Promise<void> };
  if (mod.default) await mod.default();
}
