// The native runtime's intra-op threads: the cores this process may use unless told otherwise.
// onnxruntime's own default (its count of physical cores) was 1 on a 2-vCPU VM where Linux lists two
// cores, which ran every GEMM of calibration, GPTQ and evaluation on one core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { ortOptions } from '../../src/engine/session.js';

test('native sessions use every core this process may use; an explicit count and the portable runtime keep theirs', () => {
  assert.equal(ortOptions({}).intraOpNumThreads, availableParallelism());
  assert.equal(ortOptions({ runtime: 'native' }).intraOpNumThreads, availableParallelism());
  assert.equal(ortOptions({ threads: 1 }).intraOpNumThreads, 1);
  assert.equal(ortOptions({ runtime: 'portable' }).intraOpNumThreads, undefined);
});
