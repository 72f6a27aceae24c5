// Streaming RTN to GGUF (src/pipeline/quantize/rtn-stream.ts): the file written with 1 or 3 worker threads,
// with the stages overlapped or one tensor at a time, is the same byte for byte, and each
// quantized tensor equals the TypeScript reference codec on the decoded input (F16, BF16 and F32
// checkpoints; with an importance matrix; a K-quant fallback row width; the embedding converted
// to F16; on the caller's pool over plain buffers, as the page runs it; rows read by the workers
// from the file or by the main thread into shared memory). A NaN names its tensor and leaves no
// output, as does a file that ends inside a tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { IoError, NumericError } from '../../../src/core/errors.js';
import type { GgmlType } from '../../../src/core/dtype.js';
import { openGgufFile } from '../../../src/formats/io/index.js';
import { hfToGguf } from '../../../src/model/names.js';
import { loadModel } from '../../../src/model/load.js';
import { saveModel } from '../../../src/model/save.js';
import { quantizeGgmlReference } from '../../../src/quant/ggml/index.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { hashFilesOffThread, writeRtnGguf, type RtnTensorPlan } from '../../../src/pipeline/quantize/rtn-stream.js';
import { InlineRowsPool } from '../../../src/quant/ggml/wasm/worker-queue.js';
import { QuantPool } from '../../../src/quant/node/worker-pool.js';
import { quantizeGgml } from '../../../src/quant/ggml/index.js';
import { shapeConfig, writeGeneratedGguf } from '../../../bench/gen-llama.js';
import type { TensorSource } from '../../../src/model/weights.js';
import { tempDir } from '../../helpers.js';

// two layers; FFN 640 is not a multiple of 256, so down_proj falls back from the K-quants
const CONFIG = shapeConfig('llama-3.2-1b', { nLayers: 2, vocabSize: 300, hiddenSize: 256, intermediateSize: 640, nHeads: 4, nKvHeads: 2, headDim: 64 });

async function tensorBytes(path: string): Promise<Map<string, { type: string; bytes: Uint8Array }>> {
  const g = await openGgufFile(path);
  try {
    const out = new Map<string, { type: string; bytes: Uint8Array }>();
    for (const t of g.tensors) out.set(t.name, { type: t.type, bytes: await g.readBytes(t.name) });
    return out;
  } finally {
    await g.close();
  }
}

test('streaming RTN: 1 and 3 threads give the same file; tensors equal the reference codec', { timeout: 240_000 }, async () => {
  const dir = tempDir('bitscale-rtn-');
  // [input dtype, scheme, thread counts compared]
  for (const [dtype, scheme, threadCounts] of [['F16', 'q4_k', [1, 3]], ['F16', 'q8_0', [2]], ['BF16', 'q6_k', [1, 3]], ['F32', 'q4_k', [2]]] as const) {
    const model = join(dir, `m-${dtype}.gguf`);
    if (!existsSync(model)) await writeGeneratedGguf(model, CONFIG, dtype);
    {
      const outs: string[] = [];
      for (const threads of threadCounts) {
        const out = join(dir, `${dtype}-${scheme}-${threads}.gguf`);
        await quantizeModel({ model, out, format: 'gguf', scheme, method: 'rtn', verify: false, threads, tokenizer: null });
        outs.push(out);
        assert.ok(existsSync(`${out}.manifest.json`));
      }
      if (outs.length === 2) assert.ok(readFileSync(outs[0]).equals(readFileSync(outs[1])), `${dtype} ${scheme}: 1 vs 3 threads`);
      // every quantized tensor against the TypeScript codec on the decoded input
      const got = await tensorBytes(outs[outs.length - 1]);
      const w = await loadModel(model, { tokenizer: null });
      try {
        let n = 0;
        for (const [name, src] of w.tensors) {
          const t = got.get(hfToGguf(name)!)!;
          if (!/_proj\.weight$/.test(name)) continue;
          const [N, K] = src.shape;
          const want = quantizeGgmlReference(t.type as GgmlType, await src.readF32(), N, K);
          assert.ok(Buffer.from(t.bytes).equals(Buffer.from(want)), `${dtype} ${scheme} ${name} (${t.type})`);
          n++;
        }
        assert.equal(n, 14);
        // the (tied) embedding is quantized as llama.cpp's recipe has it (the output's type, Q6_K
        // where its rows allow; issue 14), on the workers, equal to the reference codec
        const emb = got.get('token_embd.weight')!;
        const es = w.tensors.get('model.embed_tokens.weight')!;
        assert.notEqual(emb.type, 'F16', `${dtype} ${scheme}: the embedding is quantized`);
        const ewant = quantizeGgmlReference(emb.type as GgmlType, await es.readF32(), es.shape[0], es.shape[1]);
        assert.ok(Buffer.from(emb.bytes).equals(Buffer.from(ewant)), `${dtype} ${scheme} embedding as ${emb.type}`);
        if (scheme === 'q4_k') assert.equal(got.get('blk.0.ffn_down.weight')!.type, 'Q5_0', 'llama.cpp falls back to Q5_0 when K is not a multiple of 256');
      } finally {
        await w.close();
      }
    }
  }
});

test('writeRtnGguf: with importance weights, one tensor in flight or many, the same bytes; a NaN names its tensor and leaves no file', { timeout: 180_000 }, async () => {
  const dir = tempDir('bitscale-rtn-');
  const model = join(dir, 'm.gguf');
  await writeGeneratedGguf(model, CONFIG, 'F16');
  const w = await loadModel(model, { tokenizer: null });
  try {
    const im = new Map<number, Float32Array>([[256, Float32Array.from({ length: 256 }, (_, i) => (i % 5) + 0.5)]]);
    const plan = (n: string, src: TensorSource): RtnTensorPlan | null =>
      /_proj\.weight$/.test(n) && src.shape[1] === 256 ? { type: 'Q4_K', imatrix: im.get(256) } : /down_proj/.test(n) ? { type: 'Q5_0' } : null;
    // the same sources without their file location: read on the main thread into shared memory
    // instead of by each worker from the file
    const noFile = new Map([...w.tensors].map(([n, src]) => [n, { ...src, file: undefined }]));
    assert.ok(w.tensors.get('model.layers.1.mlp.up_proj.weight')!.file, 'a GGUF tensor knows its place in the file');
    const files: Buffer[] = [];
    // pieceBytes 4096: every projection (≥ 36 KB of Q4_K or Q5_0) quantized and written in pieces
    // of 28 or 22 rows through two reused buffers, the last piece shorter
    for (const [threads, lookahead, viaMain, pieceBytes] of [[1, 1, false, undefined], [2, 64 << 20, false, undefined], [3, 1 << 30, false, undefined], [2, 1, true, undefined], [2, 64 << 20, false, 4096], [1, 1, false, 4096]] as const) {
      const out = join(dir, `o-${threads}-${viaMain}-${pieceBytes ?? 0}.gguf`);
      await writeRtnGguf(viaMain ? { ...w, tensors: noFile } : w, out, { plan, threads, lookahead, pieceBytes });
      files.push(readFileSync(out));
    }
    for (let i = 1; i < files.length; i++) assert.ok(files[0].equals(files[i]), `same bytes for every thread count, lookahead, way of reading and piece size (${i})`);
    // the pieces are what the threads were given: up_proj [640, 256] as Q4_K (144 B a row) in 22
    // jobs of 28 rows and one of 24, each read from its own place in the file
    const qp = new QuantPool(2);
    const upJobs: number[] = [];
    const up = w.tensors.get('model.layers.0.mlp.up_proj.weight')!;
    const recording = { threads: 2, readsFiles: true, close: () => qp.close(), quantizeGgmlRows: (j: Parameters<QuantPool['quantizeGgmlRows']>[0]) => {
      if (j.file && j.file.offset >= up.file!.offset && j.file.offset < up.file!.offset + up.byteLength) upJobs.push(j.nRows, (j.file.offset - up.file!.offset) / 512);
      return qp.quantizeGgmlRows(j);
    } };
    try {
      await writeRtnGguf(w, join(dir, 'o-pieces.gguf'), { plan, threads: 2, pieceBytes: 4096, pool: recording });
    } finally {
      await qp.close();
    }
    assert.deepEqual(upJobs, Array.from({ length: 23 }, (_, i) => [i < 22 ? 28 : 24, 28 * i]).flat());
    assert.ok(readFileSync(join(dir, 'o-pieces.gguf')).equals(files[0]));
    // the page's way: the caller's pool, here the kernels on this thread over plain ArrayBuffers
    // (a page without cross-origin isolation has no SharedArrayBuffer); the pool stays open
    const inline = new InlineRowsPool(quantizeGgml);
    let rowsJobs = 0;
    const counting = { threads: 1, close: () => assert.fail('the caller’s pool is closed by the caller'), quantizeGgmlRows: (j: Parameters<InlineRowsPool['quantizeGgmlRows']>[0]) => (rowsJobs++, assert.ok(j.src instanceof ArrayBuffer), inline.quantizeGgmlRows(j)) };
    const sab = Object.getOwnPropertyDescriptor(globalThis, 'SharedArrayBuffer')!;
    delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
    try {
      await writeRtnGguf(w, join(dir, 'o-inline.gguf'), { plan, threads: 1, lookahead: 1, pool: counting });
    } finally {
      Object.defineProperty(globalThis, 'SharedArrayBuffer', sab);
    }
    assert.ok(rowsJobs >= 14, `every planned tensor went through the caller's pool (${rowsJobs})`);
    assert.ok(readFileSync(join(dir, 'o-inline.gguf')).equals(files[0]), 'the caller’s pool on plain buffers: the same bytes');
    const got = await tensorBytes(join(dir, 'o-3-false-0.gguf'));
    const q = w.tensors.get('model.layers.1.self_attn.q_proj.weight')!;
    const want = quantizeGgmlReference('Q4_K', await q.readF32(), 256, 256, im.get(256));
    assert.ok(Buffer.from(got.get('blk.1.attn_q.weight')!.bytes).equals(Buffer.from(want)), 'imatrix-weighted Q4_K');

    // a NaN in one tensor: typed error naming it, nothing at the output path; read on the main
    // thread (a source without a file) and by the workers from a file holding the NaN
    const bad = 'model.layers.1.mlp.up_proj.weight';
    const src = w.tensors.get(bad)!;
    const poisoned = new Map(w.tensors);
    poisoned.set(bad, {
      ...src,
      file: undefined,
      readInto: async (dst) => {
        await src.readInto!(dst);
        new Uint16Array(dst.buffer, dst.byteOffset, dst.length / 2)[1000] = 0x7e00; // fp16 NaN
      },
    });
    const out = join(dir, 'nan.gguf');
    const namesIt = (e: unknown) => e instanceof NumericError && e.context.tensor === bad && e.context.index === 1000;
    await assert.rejects(writeRtnGguf({ ...w, tensors: poisoned }, out, { plan, threads: 2 }), namesIt);
    assert.ok(!existsSync(out));
    const nanModel = join(dir, 'nan-in-file.gguf');
    const bytes = readFileSync(model);
    bytes.writeUInt16LE(0x7e00, src.file!.offset + 2 * 1000);
    writeFileSync(nanModel, bytes);
    const wn = await loadModel(nanModel, { tokenizer: null });
    try {
      await assert.rejects(writeRtnGguf(wn, out, { plan, threads: 2 }), namesIt);
      assert.ok(!existsSync(out));
    } finally {
      await wn.close();
    }
    // a NaN in a late piece of a tensor written in pieces (value 100,000 = row 390, in the 14th
    // piece of 28 rows): the index still counts from the tensor's first value
    const late = readFileSync(model);
    late.writeUInt16LE(0x7e00, src.file!.offset + 2 * 100_000);
    writeFileSync(nanModel, late);
    const wl = await loadModel(nanModel, { tokenizer: null });
    try {
      await assert.rejects(
        writeRtnGguf(wl, out, { plan, threads: 2, pieceBytes: 4096 }),
        (e: unknown) => e instanceof NumericError && e.context.tensor === bad && e.context.index === 100_000 && e.context.file === nanModel,
      );
      assert.ok(!existsSync(out));
    } finally {
      await wl.close();
    }
    // a file that ends inside a tensor the workers read: typed error naming the file
    const short = new Map(w.tensors);
    short.set(bad, { ...src, file: { path: model, offset: bytes.length - 100 } });
    await assert.rejects(writeRtnGguf({ ...w, tensors: short }, out, { plan, threads: 2 }), (e: unknown) => e instanceof IoError && e.code === 'truncated' && e.context.file === model);
    assert.ok(!existsSync(out));
  } finally {
    await w.close();
  }
});

test('writeRtnGguf: a tensor written as stored (an F16 embedding kept, a copy) is read a piece of rows at a time, not whole; the same file; a failed piece read leaves no output', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-rtn-');
  const model = join(dir, 'm.gguf');
  await writeGeneratedGguf(model, CONFIG, 'F16');
  const w = await loadModel(model, { tokenizer: null });
  try {
    const EMB = 'model.embed_tokens.weight';
    const emb = w.tensors.get(EMB)!;
    assert.equal(emb.dtype, 'F16');
    assert.deepEqual(emb.shape, [300, 256]); // 512 B a row
    const ranges: number[] = [];
    let failAt = -1;
    const watched = (src: TensorSource): TensorSource => ({
      ...src,
      read: () => assert.fail('a large stored tensor is not read whole'),
      readRange: (off, len) => {
        ranges.push(off, len);
        if (ranges.length / 2 - 1 === failAt) return Promise.reject(new IoError('io', 'disk went away', { file: model, offset: off }));
        return src.readRange!(off, len);
      },
    });
    const tensors = new Map(w.tensors);
    tensors.set(EMB, watched(emb));
    const proj = (n: string): RtnTensorPlan | null => (/_proj\.weight$/.test(n) ? { type: 'Q4_0' } : null);
    const asCopy = (n: string): RtnTensorPlan | null => (n === EMB ? { type: 'F16', copy: true } : proj(n));
    const whole = join(dir, 'whole.gguf');
    await writeRtnGguf(w, whole, { plan: asCopy, threads: 2 });
    // pieces of 4096 B = 8 rows: 37 of 8 rows and one of 4, read in order from the tensor's start
    const want = Array.from({ length: 38 }, (_, i) => [i * 4096, i < 37 ? 4096 : 4 * 512]).flat();
    for (const [label, plan] of [['copy', asCopy], ['kept as stored (no plan)', proj]] as const) {
      ranges.length = 0;
      const out = join(dir, `pieces-${label.length}.gguf`);
      await writeRtnGguf({ ...w, tensors }, out, { plan, threads: 2, pieceBytes: 4096 });
      assert.deepEqual(ranges, want, label);
      assert.ok(readFileSync(out).equals(readFileSync(whole)), `${label}: the same file as the tensor read whole`);
    }
    ranges.length = 0;
    failAt = 5;
    const out = join(dir, 'failed.gguf');
    await assert.rejects(writeRtnGguf({ ...w, tensors }, out, { plan: asCopy, threads: 2, pieceBytes: 4096 }), (e: unknown) => e instanceof IoError && e.code === 'io' && e.context.offset === 5 * 4096);
    assert.ok(!existsSync(out));
  } finally {
    await w.close();
  }
});

test('streaming RTN from a Hugging Face safetensors folder (BF16): the workers read each tensor from its file; the same tensors as from the GGUF it was saved from', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-rtn-');
  const model = join(dir, 'm.gguf');
  await writeGeneratedGguf(model, CONFIG, 'BF16');
  const plan = (n: string): RtnTensorPlan | null => (/_proj\.weight$/.test(n) ? { type: 'Q8_0' } : null);
  const g = await loadModel(model, { tokenizer: null });
  const hf = join(dir, 'hf');
  try {
    await saveModel(g, hf, { format: 'hf', dtype: 'BF16' });
    await writeRtnGguf(g, join(dir, 'from-gguf.gguf'), { plan, threads: 1 });
  } finally {
    await g.close();
  }
  const w = await loadModel(hf, { tokenizer: null });
  try {
    const q = w.tensors.get('model.layers.0.mlp.up_proj.weight')!;
    assert.equal(q.dtype, 'BF16');
    assert.ok(q.file && q.file.path.endsWith('.safetensors'), 'a safetensors tensor knows its place in the file');
    await writeRtnGguf(w, join(dir, 'from-hf.gguf'), { plan, threads: 2 });
    // in pieces of 3 rows: q/k (whose rows the writer permutes) are gathered first, the rest streamed
    await writeRtnGguf(w, join(dir, 'from-hf-pieces.gguf'), { plan, threads: 2, pieceBytes: 1024 });
  } finally {
    await w.close();
  }
  assert.ok(readFileSync(join(dir, 'from-hf-pieces.gguf')).equals(readFileSync(join(dir, 'from-hf.gguf'))), 'in pieces: the same file');
  // the writer permutes q/k rows from the Hugging Face rotary layout to GGUF's after quantizing
  const [a, b] = [await tensorBytes(join(dir, 'from-gguf.gguf')), await tensorBytes(join(dir, 'from-hf.gguf'))];
  let n = 0;
  for (const [name, t] of a) {
    if (t.type !== 'Q8_0') continue;
    assert.ok(Buffer.from(b.get(name)!.bytes).equals(Buffer.from(t.bytes)), name);
    n++;
  }
  assert.equal(n, 14);
});

test('quantize (streaming RTN): the input hash and the worker pool start before the model headers are read, which are read once (BITSCALE_TRACE_PHASES marks); the digests are the files\'', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-rtn-early-');
  try {
    const model = join(dir, 'm.gguf');
    await writeGeneratedGguf(model, CONFIG, 'F16');
    const out = join(dir, 'q.gguf');
    const env = { ...process.env, BITSCALE_TRACE_PHASES: '1', BITSCALE_NO_REEXEC: '1', BITSCALE_DIGEST_CACHE: join(dir, 'digests') };
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'quantize', model, '--out', out, '--scheme', 'q8_0', '--method', 'rtn', '--no-verify', '--format', 'gguf', '--threads', '2', '--quiet'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    // "phase <ms> <wall ms> <pid> <label>"
    const marks = r.stderr.split('\n').flatMap((l) => (l.startsWith('phase ') ? [l.split(' ').slice(4).join(' ')] : []));
    const at = (label: string): number => {
      const i = marks.indexOf(label);
      assert.ok(i >= 0, `no mark '${label}' in ${JSON.stringify(marks)}`);
      return i;
    };
    // the hash thread and the pool's threads start while the single-threaded start-up reads the headers and plans
    assert.ok(at('input hash: start') < at('quantize: headers read'));
    assert.ok(at('rtn: pool started') < at('quantize: headers read'));
    assert.ok(at('quantize: headers read') < at('rtn: start'));
    // the headers (the vocabulary above all) are parsed once: the checks before the run and the run share the load
    assert.deepEqual(marks.filter((l) => l.startsWith('model: loaded')), ['model: loaded gguf']);
    const m = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { input: { sha256: Record<string, string> }; output: { sha256: Record<string, string> } };
    assert.deepEqual(m.input.sha256, { [model]: createHash('sha256').update(readFileSync(model)).digest('hex') });
    assert.deepEqual(Object.values(m.output.sha256), [createHash('sha256').update(readFileSync(out)).digest('hex')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quantize (streaming RTN) errors after the early start: a missing model, a damaged header, a NaN in a tensor each reject with their typed error, leave no output, and end the early threads (the process exits by itself)', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-rtn-early-err-');
  try {
    const model = join(dir, 'm.gguf');
    await writeGeneratedGguf(model, CONFIG, 'F16');
    const damaged = join(dir, 'damaged.gguf');
    writeFileSync(damaged, readFileSync(model).subarray(0, 1000)); // ends inside the vocabulary
    const nan = join(dir, 'nan.gguf');
    const bad = 'model.layers.1.mlp.up_proj.weight';
    const w = await loadModel(model, { tokenizer: null });
    const at = w.tensors.get(bad)!.file!.offset;
    await w.close();
    const bytes = readFileSync(model);
    bytes.writeUInt16LE(0x7e00, at + 2 * 1000); // fp16 NaN
    writeFileSync(nan, bytes);
    // a child without process.exit: a worker left running would keep it alive past the timeout
    const script = join(dir, 'run.mts');
    writeFileSync(
      script,
      `import { existsSync } from 'node:fs';
import { quantizeModel } from ${JSON.stringify(join(process.cwd(), 'src/pipeline/quantize/quantize.ts'))};
const out = [];
for (const [model, name] of ${JSON.stringify([[join(dir, 'missing.gguf'), 'a'], [damaged, 'b'], [nan, 'c']])}) {
  const o = ${JSON.stringify(dir)} + '/' + name + '.gguf';
  try {
    await quantizeModel({ model, out: o, format: 'gguf', scheme: 'q8_0', method: 'rtn', verify: false, threads: 2 });
    out.push({ ok: true });
  } catch (e) {
    out.push({ name: e.name, code: e.code, tensor: e.context?.tensor ?? null, index: e.context?.index ?? null, output: existsSync(o) || existsSync(o + '.manifest.json') });
  }
}
console.log(JSON.stringify(out));
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, BITSCALE_TRACE_PHASES: '1', BITSCALE_DIGEST_CACHE: 'off' } });
    assert.equal(r.signal, null, 'the child ended by itself');
    assert.equal(r.status, 0, r.stderr);
    // each run had its pool running when the error came
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('phase ') && l.endsWith(' rtn: pool started')).length, 3, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), [
      { name: 'IoError', code: 'missing_file', tensor: null, index: null, output: false },
      { name: 'FormatError', code: 'too_large', tensor: null, index: null, output: false }, // the vocabulary's length exceeds what is left of the file
      { name: 'NumericError', code: 'non_finite', tensor: bad, index: 1000, output: false },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hashFilesOffThread: the digests of files (whole blocks, a tail, empty); an abort ends the thread and rejects with the reason', async () => {
  const dir = tempDir('bitscale-hash-thread-');
  try {
    const a = join(dir, 'a.bin');
    writeFileSync(a, Buffer.alloc(9 << 20, 7));
    // the reads run ahead of the digest in two 4 MiB buffers: sizes around and between whole blocks, and empty
    const files = [a];
    for (const [name, n] of [['b.bin', (8 << 20) + 123], ['c.bin', 4 << 20], ['d.bin', 0], ['e.bin', 5]] as const) {
      const p = join(dir, name);
      writeFileSync(p, Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + (i >> 12)) & 0xff)));
      files.push(p);
    }
    assert.deepEqual(await hashFilesOffThread(files), files.map((f) => createHash('sha256').update(readFileSync(f)).digest('hex')));
    const ac = new AbortController();
    const p = hashFilesOffThread([a, a, a, a], ac.signal);
    ac.abort(new Error('not needed'));
    await assert.rejects(p, /not needed/);
    await assert.rejects(hashFilesOffThread([a], ac.signal), /not needed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quantize --threads refuses 0 and absurd values before any work', () => {
  for (const bad of ['0', '5000', '1.5']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'quantize', 'no-such-model.gguf', '--out', 'never.gguf', '--scheme', 'q4_k', '--no-verify', '--threads', bad], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--threads/, bad);
    assert.ok(!existsSync('never.gguf'));
  }
});

test('streaming RTN manifest: output sha256 = sha256 of the final file (bytes written around the page cache), input sha256 from the digest cache only while the input is unchanged', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-rtn-digest-');
  const was = process.env.BITSCALE_DIGEST_CACHE;
  process.env.BITSCALE_DIGEST_CACHE = join(dir, 'digests');
  try {
    const model = join(dir, 'm.gguf');
    // a vocabulary large enough for the output to pass several 8 MiB write blocks
    await writeGeneratedGguf(model, { ...CONFIG, vocabSize: 80_000 }, 'F16');
    // the cache stores a digest only for a file last changed over 2 s before (digest-cache.ts)
    await new Promise((r) => setTimeout(r, 2100));
    const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
    const run = async (name: string): Promise<string[]> => {
      const out = join(dir, name);
      await quantizeModel({ model, out, format: 'gguf', scheme: 'q8_0', method: 'rtn', verify: false, threads: 2, tokenizer: null });
      const m = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { input: { sha256: Record<string, string>; sha256FromCache: string[] }; output: { sha256: Record<string, string> } };
      assert.ok(statSync(out).size > 2 * 8 * 2 ** 20, 'the output passes several write blocks');
      assert.deepEqual(Object.values(m.output.sha256), [sha(out)], `${name}: output digest`);
      assert.deepEqual(m.input.sha256, { [model]: sha(model) }, `${name}: input digest`);
      return m.input.sha256FromCache;
    };
    assert.deepEqual(await run('a.gguf'), [], 'cold: read');
    assert.deepEqual(await run('b.gguf'), [model], 'warm: from the cache');
    assert.ok(readFileSync(join(dir, 'a.gguf')).equals(readFileSync(join(dir, 'b.gguf'))));
    // one byte of a tensor rewritten in place, modification time put back: read again, new digest
    const { atime, mtime, size } = statSync(model);
    const fd = openSync(model, 'r+');
    writeSync(fd, Buffer.from([0x3c]), 0, 1, size - 2);
    closeSync(fd);
    utimesSync(model, atime, mtime);
    assert.deepEqual(await run('c.gguf'), [], 'changed: read again');
  } finally {
    if (was === undefined) delete process.env.BITSCALE_DIGEST_CACHE;
    else process.env.BITSCALE_DIGEST_CACHE = was;
    rmSync(dir, { recursive: true, force: true });
  }
});
