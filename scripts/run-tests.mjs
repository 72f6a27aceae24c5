// Runs every test file under test/ with node's built-in test runner (TypeScript through tsx).
// Node 20's --test takes no globs, so the files are listed here. Pass paths or substrings to
// filter: `node scripts/run-tests.mjs quant/ggml`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.test\.(ts|mjs|js)$/.test(name)) out.push(p);
  }
  return out;
}

// the WebAssembly kernels are a build output the sources import: rebuild them if stale
const built = spawnSync(process.execPath, ['scripts/build-wasm.mjs'], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const filters = process.argv.slice(2);
let files = walk('test');
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (!files.length) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  // the input digest cache stays out of the user's cache folder (the tests that need it name a temporary one);
  // onnxruntime one thread per session: two test files run at once on two cores, and sessions of two
  // threads each (whose idle threads spin) oversubscribed them
  { stdio: 'inherit', env: { BITSCALE_DIGEST_CACHE: 'off', BITSCALE_ORT_THREADS: '1', ...process.env, NODE_OPTIONS: '' } },
);
process.exit(r.status ?? 1);
