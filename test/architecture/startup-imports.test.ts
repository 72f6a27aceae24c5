// `bitscale quantize --method rtn --no-verify` to GGUF is timed as a whole command against
// llama.cpp (bench/scale.bench.ts), so its start-up must not pay for what that path never runs:
// onnxruntime's native binding and protobuf's 45 modules cost ≈0.3 s of a 3 s run at the 1B shape.
// This walks the static import graph (what Node loads before the command's first line runs) of
// the quantize command and fails when a heavy package becomes reachable from it again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const HEAVY = ['onnxruntime-node', 'onnxruntime-web', 'protobufjs', '@huggingface/tokenizers', 'yaml', 'zod'];

/** static, value-level imports and re-exports of a TypeScript source (type-only ones are erased) */
function staticImports(src: string): string[] {
  const re = /(?:^|\n)\s*(import|export)\s+(type\s)?[^;]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;
  const out: string[] = [];
  for (const m of src.matchAll(re)) {
    if (m[4]) out.push(m[4]);
    else if (!m[2]) out.push(m[3]);
  }
  return out;
}

/** module → the module that first imported it, over the static graph from `entry` */
function staticGraph(entry: string): Map<string, string | null> {
  const seen = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  while (queue.length) {
    const file = queue.shift()!;
    for (const spec of staticImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const ts = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        if (existsSync(ts) && !seen.has(ts)) {
          seen.set(ts, file);
          queue.push(ts);
        }
      } else if (!spec.startsWith('node:') && !seen.has(`pkg:${spec}`)) seen.set(`pkg:${spec}`, file);
    }
  }
  return seen;
}

function chain(g: Map<string, string | null>, k: string): string {
  const parts = [k];
  for (let p = g.get(k); p; p = g.get(p)) parts.push(relative('src', p));
  return parts.join(' ← ');
}

test('the quantize command loads no ONNX, protobuf, tokenizer or recipe package before it runs', () => {
  const g = staticGraph(resolve('src/cli/commands/quantize.ts'));
  const bad = [...g.keys()].filter((k) => HEAVY.some((h) => k === `pkg:${h}` || k.startsWith(`pkg:${h}/`)));
  assert.deepEqual(bad.map((k) => chain(g, k)), []);
  // the walk itself must see the streaming RTN path, or it proves nothing
  assert.ok(g.has(resolve('src/pipeline/quantize/rtn-stream.ts')), 'rtn-stream.ts not reached: the import scanner is broken');
});
