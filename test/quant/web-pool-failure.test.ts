// GgmlWebPool when a kernel worker fails (Node, with stand-in workers; the real Web Workers are
// test/quant/web-pool.test.ts and test/web/page.test.ts): a worker that throws (an 'error' event,
// no reply) or never answers must fail the job with a message naming it, never leave it waiting,
// and every later job on that pool fails at once too. A worker that answers gives the bytes of
// quantizeGgml (so the stand-in is a faithful worker when it works).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GgmlWebPool, type WebWorkerLike } from '../../src/quant/ggml/wasm/web-pool.js';
import { runGgmlRowsJob, type GgmlRowsJob } from '../../src/quant/ggml/wasm/rows-job.js';
import { quantizeGgml } from '../../src/quant/ggml/index.js';
import { Rng } from '../../src/core/rng.js';

type Behaviour = 'work' | 'throw' | 'silent';

/** A stand-in Web Worker on this thread: runs rows jobs (work), fires 'error' (throw) or never answers (silent). */
function standIn(b: Behaviour, log: string[]): WebWorkerLike {
  const w: WebWorkerLike = {
    onmessage: null,
    onerror: null,
    onmessageerror: null,
    postMessage(msg) {
      const { id, job } = msg as { id: number; job: GgmlRowsJob };
      setTimeout(() => {
        if (b === 'work') {
          runGgmlRowsJob(job, quantizeGgml);
          w.onmessage?.({ data: { id, ok: true } });
        } else if (b === 'throw') w.onerror?.({ message: 'Uncaught Error: boom' });
      }, 1);
    },
    terminate: () => void log.push('terminated'),
  };
  return w;
}

const input = (R: number, K: number) => new Rng(5).fillNormal(new Float32Array(R * K), 0, 0.05);

test('GgmlWebPool: stand-in workers that answer give quantizeGgml’s bytes', async () => {
  const log: string[] = [];
  const pool = new GgmlWebPool(() => standIn('work', log), 2, 1000);
  const x = input(40, 256);
  const got = await pool.quantize('Q4_0', x, 40, 256);
  assert.deepEqual(got, quantizeGgml('Q4_0', x, 40, 256));
  pool.close();
});

test('GgmlWebPool: a worker that throws fails the job with its message, and later jobs fail at once', async () => {
  const log: string[] = [];
  let n = 0;
  const pool = new GgmlWebPool(() => standIn(n++ === 0 ? 'throw' : 'work', log), 2, 60_000);
  const x = input(64, 256);
  await assert.rejects(pool.quantize('Q8_0', x, 64, 256), /kernel worker 0 failed: Uncaught Error: boom/);
  assert.ok(log.length >= 2, 'the pool’s workers were terminated');
  assert.equal(pool.state().broken, 'kernel worker 0 failed: Uncaught Error: boom');
  await assert.rejects(pool.quantize('Q8_0', x, 64, 256), /kernel worker 0 failed/, 'a broken pool takes no more jobs');
  pool.close();
});

test('GgmlWebPool: a worker that never answers fails the job after the answer timeout', async () => {
  const log: string[] = [];
  const pool = new GgmlWebPool(() => standIn('silent', log), 1, 40);
  const t0 = Date.now();
  await assert.rejects(pool.quantize('Q4_0', input(8, 256), 8, 256), /kernel worker 0 did not answer within 0.04 s/);
  assert.ok(Date.now() - t0 >= 40, 'not before the timeout');
  pool.close();
});
