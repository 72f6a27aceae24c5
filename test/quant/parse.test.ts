// Scheme strings: every documented string parses, and formatScheme is its inverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors.js';
import { parseScheme, formatScheme } from '../../src/quant/index.js';

const STRINGS = [
  'int4-g128', 'int4-g128-asym', 'int8-channel', 'int8-tensor', 'int2-g64', 'int3-g128', 'int4-channel1',
  'int4-g32-bf16', 'int8-channel-f16', 'int4-g128-asym-away', 'int4-g128-restricted', 'int8-channel-restricted-f16-away', 'fp8-e4m3', 'fp8-e5m2', 'fp8-e4m3-cast',
  'fp8-e4m3-tensor', 'fp4', 'fp4-g32', 'fp16', 'bf16', 'mxfp4', 'mxfp6-e2m3', 'mxfp6-e3m2', 'mxfp8',
  'mxfp8-e5m2', 'mxint8', 'nvfp4', 'nf4-g64', 'log2-g128', 'log23-g64', 'kmeans4-g128', 'kmeans3-channel',
  'ternary', 'ternary-channel', 'binary', 'seq2', 'seq-ternary', 'seq2-g64', 'q4_0', 'q4_k', 'iq4_nl', 'tq2_0',
  'q8_0', 'q6_k', 'mxfp4',
];

test('every scheme string round-trips through parse/format', () => {
  for (const s of STRINGS) {
    const sc = parseScheme(s);
    assert.deepEqual(parseScheme(formatScheme(sc)), sc, s);
  }
  assert.equal(formatScheme(parseScheme('int4-g128')), 'int4-g128');
  assert.equal(formatScheme(parseScheme('INT4-G128-ASYM')), 'int4-g128-asym');
});

test('parsed fields', () => {
  assert.deepEqual(parseScheme('int4-g128'), {
    kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'group', size: 128 }, scaleDtype: 'F16', rounding: 'half_even',
  });
  assert.deepEqual(parseScheme('int8-channel'), {
    kind: 'int', bits: 8, symmetric: true, granularity: { kind: 'channel', axis: 0 }, scaleDtype: 'F32', rounding: 'half_even',
  });
  assert.deepEqual(parseScheme('int4-channel-restricted'), {
    kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'channel', axis: 0 }, scaleDtype: 'F32', rounding: 'half_even', restricted: true,
  });
  assert.deepEqual(parseScheme('q4_k'), { kind: 'ggml', type: 'Q4_K' });
  assert.deepEqual(parseScheme('ternary'), { kind: 'lowbit', method: 'absmean_ternary', granularity: { kind: 'tensor' } });
  assert.deepEqual(parseScheme('nvfp4'), { kind: 'nvfp4' });
});

test('bad strings give a ConfigError naming the string', () => {
  for (const s of ['int9-g128', 'int4', 'int4-g0', 'int4-x', 'int4-g128-foo', 'fp8-e4m3-zz', 'q4_9', 'f32', '', 'int4-g128-asym-restricted', 'nf4-g64-restricted']) {
    assert.throws(() => parseScheme(s), (e: unknown) => e instanceof ConfigError && e.context.found === s.toLowerCase(), s);
  }
});
