// The browser entry (src/browser.ts) really runs in a browser: esbuild bundles it for
// platform 'browser' (any node:* import, direct or through a dependency, fails the build), and the
// bundle is then imported to check it evaluates and quantizes without Node globals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { withTempDir } from '../helpers.js';

test('src/browser.ts bundles for the browser with no node:* module', async () => {
  const r = await build({
    entryPoints: ['src/browser.ts'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  const inputs = Object.keys(r.metafile.inputs);
  assert.ok(inputs.some((f) => f.includes('src/quant/')));
  assert.ok(!inputs.some((f) => f.startsWith('node:')), inputs.filter((f) => f.startsWith('node:')).join(', '));
  const code = r.outputFiles[0].text;
  assert.doesNotMatch(code, /from\s*["']node:/);
  // Evaluate the bundle and use it: Q4_0 of a ramp and the scaling law's compute-optimal precision.
  await withTempDir('bitscale-bundle-', async (dir) => {
    const file = join(dir, 'bundle.mjs');
    writeFileSync(file, code);
    const m = (await import(pathToFileURL(file).href)) as typeof import('../../src/browser.js');
    const x = Float32Array.from({ length: 64 }, (_, i) => (i - 32) / 32);
    const q = m.quantize(x, [2, 32], m.parseScheme('q4_0'));
    const y = m.dequantize(q);
    assert.equal(y.length, 64);
    assert.ok(Math.max(...Array.from(y, (v, i) => Math.abs(v - x[i]))) < 0.1);
  });
});
