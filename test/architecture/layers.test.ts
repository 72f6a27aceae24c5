// The pipeline's folders import in one direction only (../shared/DESIGN.md, "Layers"), the
// browser-safe folders never touch node:*, and no source file hides two ideas in 600+ lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

const SRC = resolve('src');

/** folder → folders it may import (itself always allowed). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  numerics: ['core'],
  formats: ['core', 'numerics'],
  quant: ['core', 'numerics'],
  model: ['core', 'numerics', 'formats', 'quant'],
  // engine encodes ONNX through formats/onnx (the protobuf schema lives with the other containers)
  engine: ['core', 'numerics', 'formats', 'quant', 'model'],
  algorithms: ['core', 'numerics', 'quant'],
  train: ['core', 'numerics', 'formats', 'quant', 'model', 'engine', 'algorithms'],
  eval: ['core', 'numerics', 'formats', 'quant', 'model', 'engine', 'algorithms', 'train'],
  scaling: ['core', 'numerics'],
  report: ['core', 'eval', 'scaling'],
  pipeline: ['core', 'numerics', 'formats', 'quant', 'model', 'engine', 'algorithms', 'train', 'eval', 'scaling', 'report'],
  cli: ['pipeline', 'core'],
};
const BROWSER_SAFE = new Set(['core', 'numerics', 'quant', 'formats', 'algorithms', 'scaling']);
const MAX_LINES = 650;

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): string {
  return relative(SRC, file).split(sep)[0];
}

function importsOf(src: string): string[] {
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  const out: string[] = [];
  for (const m of src.matchAll(re)) out.push(m[1] ?? m[2]);
  return out;
}

const files = walk(SRC);

test('every src file lives in a known layer', () => {
  for (const f of files) {
    const layer = layerOf(f);
    if (layer === 'index.ts' || layer === 'browser.ts') continue;
    assert.ok(layer in ALLOWED, `${relative(SRC, f)} is outside the layers of DESIGN.md`);
  }
});

test('imports point one way only', () => {
  const violations: string[] = [];
  for (const f of files) {
    const layer = layerOf(f);
    if (!(layer in ALLOWED)) continue;
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(f), spec);
      const tLayer = relative(SRC, target).split(sep)[0];
      if (tLayer === layer || tLayer.startsWith('..')) continue;
      if (!ALLOWED[layer].includes(tLayer)) violations.push(`${relative(SRC, f)} imports ${spec} (${layer} → ${tLayer})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('browser-safe layers never import node:* (formats/io and quant/node excepted)', () => {
  const violations: string[] = [];
  for (const f of files) {
    const layer = layerOf(f);
    if (!BROWSER_SAFE.has(layer)) continue;
    const rel = relative(SRC, f);
    // the node-only corners: file access, and the worker-thread pool of the quantizers
    if (rel.startsWith(join('formats', 'io')) || rel.startsWith(join('quant', 'node'))) continue;
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      if (spec.startsWith('node:') || ['fs', 'path', 'os', 'worker_threads', 'child_process'].includes(spec)) {
        violations.push(`${rel} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

test(`no source file over ${MAX_LINES} lines (data tables excepted)`, () => {
  const long: string[] = [];
  for (const f of files) {
    if (/\.table\.ts$/.test(f)) continue;
    const n = readFileSync(f, 'utf8').split('\n').length;
    if (n > MAX_LINES) long.push(`${relative(SRC, f)}: ${n} lines`);
  }
  assert.deepEqual(long, []);
});

test('the browser entry imports only browser-safe layers (and the report modules, which are kept browser-safe)', () => {
  const bad = importsOf(readFileSync(join(SRC, 'browser.ts'), 'utf8')).filter((spec) => {
    const layer = spec.replace(/^\.\//, '').split('/')[0];
    return !BROWSER_SAFE.has(layer) && layer !== 'report';
  });
  assert.deepEqual(bad, []);
  // every report module the entry reaches imports only browser-safe layers, other report modules,
  // eval's sweep record types (type-only), and never node:*
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const spec of importsOf(text)) {
      if (!spec.startsWith('.')) {
        assert.ok(!spec.startsWith('node:'), `${relative(SRC, file)} imports ${spec}`);
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      const layer = layerOf(target);
      if (layer === 'report') visit(target);
      else if (relative(SRC, target) === join('eval', 'sweep-types.ts')) assert.match(text, new RegExp(`import type [^;]*'${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'`), `${relative(SRC, file)}: eval types only`);
      else assert.ok(BROWSER_SAFE.has(layer), `${relative(SRC, file)} imports ${spec} (${layer})`);
    }
  };
  for (const spec of importsOf(readFileSync(join(SRC, 'browser.ts'), 'utf8'))) if (spec.startsWith('./report/')) visit(resolve(SRC, spec.replace(/\.js$/, '.ts')));
  assert.ok(seen.size >= 4, `report modules checked: ${seen.size}`);
});

test('file names are kebab-case (lowercase words joined by hyphens)', () => {
  const bad = files.map((f) => relative(SRC, f)).filter((r) => !/^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+)*\.ts$/.test(r.split(sep).pop()!));
  assert.deepEqual(bad, []);
});

test('src/pipeline/ shows its jobs: no two top-level files share a name prefix (a folder in disguise)', () => {
  const top = readdirSync(join(SRC, 'pipeline')).filter((n) => n.endsWith('.ts'));
  const byPrefix = new Map<string, string[]>();
  for (const n of top) {
    const p = n.replace(/\.ts$/, '').split('-')[0];
    byPrefix.set(p, [...(byPrefix.get(p) ?? []), n]);
  }
  assert.deepEqual([...byPrefix.values()].filter((g) => g.length > 1), []);
});

/**
 * Module names used in more than one layer, each the same concept at two layers (a command and its
 * job; a job and the layer's primitive it drives; a container's reader in each format folder).
 * Any other repeated name is two ideas under one name: rename one.
 */
const SAME_CONCEPT = new Set([
  'index', 'types', 'read', 'write', 'pack', 'reader', 'writer', // per-folder roles (formats/<format>/, quant/)
  'convert', 'demo', 'eval', 'generate', 'inspect', 'law', 'qat', 'quantize', 'sweep', 'train', 'worker', // cli/commands/<job> → pipeline's job
  'gemm', // numerics (CPU) and engine (onnxruntime): the same product
  'mixed', // algorithms/mixed (the allocation) and pipeline/quantize/mixed (its use in quantize)
  'plan', // pipeline/quantize/plan and pipeline/sweep/plan: each job's plan
  'output', // a command's output: the files (formats/io/output) and the printed text (cli/output)
]);

test('no two modules of the same name in different folders unless they are one concept at two layers', () => {
  const byName = new Map<string, string[]>();
  for (const f of files) {
    const name = f.split(sep).pop()!.replace(/\.ts$/, '');
    byName.set(name, [...(byName.get(name) ?? []), relative(SRC, f)]);
  }
  const clashes = [...byName].filter(([n, fs]) => fs.length > 1 && !SAME_CONCEPT.has(n)).map(([, fs]) => fs.join(' / '));
  assert.deepEqual(clashes, []);
});

test('the checker sees real imports (self-test)', () => {
  assert.deepEqual(importsOf("import { a } from '../core/x.js';\nexport * from './y.js';\nconst m = await import('../z.js');"), [
    '../core/x.js',
    './y.js',
    '../z.js',
  ]);
});
