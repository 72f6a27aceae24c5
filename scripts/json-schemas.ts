// Writes docs/json/<command>.schema.json (JSON Schema 2020-12) for every command's --json output
// from the zod schemas in src/cli/json-schemas.ts, and docs/json/recipe.schema.json for recipe
// files (src/pipeline/quantize/recipe.ts). Run after changing an output: `npx tsx scripts/json-schemas.ts`.
// test/cli/json-output.test.ts fails when the files are stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemaFiles } from '../src/cli/json-schemas.js';

const dir = join('docs', 'json');
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(schemaFiles())) writeFileSync(join(dir, name), text);
console.log(`wrote ${Object.keys(schemaFiles()).length} schemas to ${dir}`);
