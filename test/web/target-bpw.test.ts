// --target-bpw in the page against the CLI (stories260K, RTN onto ggml types, 8 bits per weight,
// a small calibration: 4 windows of 64 tokens): the page's file must be the CLI's byte for byte
// when the CLI calibrates on the page's runtime (`--calib-runtime portable`). Every float that feeds
// the choice and the rounding comes from onnxruntime there: the statistics (each linear's imatrix
// and Hessian) and the KL forward pass per tensor. With the native runtime the same job chose the
// same types but 76 of 278,336 bytes differed, inside the tensors rounded with importance weights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '../../src/formats/gguf/index.js';
import { memorySource } from '../../src/formats/bytes.js';
import { buildApp, cli, download, openApp, openFiles, quantize, sharedMissing, webSkip, STORIES } from './harness.js';

const skip = webSkip() || sharedMissing();
const TARGET_BPW = 8;
const CALIB = { windows: 4, seqLen: 64 };

let built: { dir: string; cleanup: () => void } | null = null;
let tmp = '';
before(async () => {
  if (skip) return;
  built = await buildApp();
  tmp = mkdtempSync(join(tmpdir(), 'bitscale-webbpw-'));
});
after(() => {
  built?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function tensors(bytes: Uint8Array): Promise<Map<string, { type: string; shape: number[]; bytes: Uint8Array }>> {
  return readGguf(memorySource(bytes)).then(
    (g) => new Map(g.tensors.map((t) => [t.name, { type: t.type, shape: t.shape, bytes: bytes.subarray(t.absoluteOffset, t.absoluteOffset + t.byteLength) }])),
  );
}

// a guard against a hung page, not a speed goal (the KL calibration runs the model once per linear:
// 36 times here; about 30 s for the CLI on the shared VM at a load average of 10)
test('--target-bpw in the page writes the CLI’s file (stories260K, 8 bpw, portable calibration runtime)', { skip, timeout: 900_000 }, async () => {
  const model = join(STORIES, 'stories260K.bin');
  const out = join(tmp, 'bpw.gguf');
  const cliRun = cli(['quantize', model, '--out', out, '--scheme', 'q4_0', '--method', 'rtn', '--target-bpw', String(TARGET_BPW), '--windows', String(CALIB.windows), '--seq-len', String(CALIB.seqLen), '--seed', '0', '--no-verify', '--quiet', '--calib-runtime', 'portable']);
  const app = await openApp(built!.dir);
  try {
    assert.equal(await openFiles(app.page, [model, join(STORIES, 'tok512.bin')]), '');
    assert.equal(await quantize(app.page, { scheme: 'q4_0', method: 'rtn', out: 'bpw.gguf', targetBpw: TARGET_BPW, ...CALIB, verify: false }), '');
    const page = (await download(app.page, 'bpw.gguf')).bytes;
    await cliRun;
    const cliBytes = new Uint8Array(readFileSync(out));
    const want = await tensors(cliBytes);
    const got = await tensors(page);
    // tensor by tensor first, so that a failure names what differs
    assert.deepEqual([...got.keys()], [...want.keys()], 'same tensors in the same order');
    const types = new Set<string>();
    for (const [name, w] of want) {
      const g = got.get(name)!;
      assert.equal(g.type, w.type, `${name}: the page chose ${g.type}, the CLI ${w.type}`);
      assert.ok(Buffer.compare(Buffer.from(g.bytes), Buffer.from(w.bytes)) === 0, `${name} (${w.type}): bytes equal the CLI's`);
      types.add(w.type);
    }
    assert.ok(types.size >= 3, `a mixed choice (types: ${[...types].join(', ')})`);
    assert.ok(Buffer.compare(Buffer.from(page), Buffer.from(cliBytes)) === 0, 'the whole file equals the CLI’s');
    assert.deepEqual(app.refused, []);
  } finally {
    await app.close();
  }
});
