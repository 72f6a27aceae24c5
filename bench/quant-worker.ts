// Worker for bench/quant-throughput.bench.ts (node-only): quantizes a slice of rows of a shared
// f32 buffer with the public API and transfers the result bytes back.
import { parentPort } from 'node:worker_threads';
import { quantize, parseScheme } from '../src/quant/index.js';

interface Job {
  id: number;
  buf: SharedArrayBuffer;
  row0: number;
  row1: number;
  cols: number;
  scheme: string;
  importance?: Float32Array;
}

parentPort!.on('message', (job: Job) => {
  const w = new Float32Array(job.buf, job.row0 * job.cols * 4, (job.row1 - job.row0) * job.cols);
  const q = quantize(w, [job.row1 - job.row0, job.cols], parseScheme(job.scheme), { importance: job.importance });
  const out = 'bytes' in q ? q.bytes : q.codes;
  parentPort!.postMessage({ id: job.id, n: out.byteLength }, [out.buffer as ArrayBuffer]);
});
