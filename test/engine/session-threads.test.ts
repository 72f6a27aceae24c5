// The native runtime's intra-op threads: the cores this process may use unless told otherwise.
// onnxruntime's own default (its count of physical cores) was 1 on a 2-vCPU VM where Linux lists two
// cores, which ran every GEMM of calibration, GPTQ and evaluation on one core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { defaultNativeThreads, ortOptions } from '../../src/engine/session.js';

test('native sessions use every core this process may use; an explicit count and the portable runtime keep theirs', () => {
  assert.equal(defaultNativeThreads({}), availableParallelism());
  assert.equal(ortOptions({}).intraOpNumThreads, defaultNativeThreads());
  assert.equal(ortOptions({ runtime: 'native' }).intraOpNumThreads, defaultNativeThreads());
  assert.equal(ortOptions({ threads: 1 }).intraOpNumThreads, 1);
  assert.equal(ortOptions({ runtime: 'portable' }).intraOpNumThreads, undefined);
});

test('BITSCALE_ORT_THREADS sets the default; anything but a positive integer is a typed error naming it', () => {
  assert.equal(defaultNativeThreads({ BITSCALE_ORT_THREADS: '1' }), 1);
  assert.equal(defaultNativeThreads({ BITSCALE_ORT_THREADS: '3' }), 3);
  assert.equal(defaultNativeThreads({ BITSCALE_ORT_THREADS: '' }), availableParallelism());
  for (const bad of ['0', '-2', '1.5', 'two']) {
    assert.throws(() => defaultNativeThreads({ BITSCALE_ORT_THREADS: bad }), (e: { code: string; context: { field: string; found: string } }) => e.code === 'bad_option' && e.context.field === 'BITSCALE_ORT_THREADS' && e.context.found === bad);
  }
});
