// Run files: JSON and CSV parse to the same rows; bad files are typed errors naming row and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitscaleError } from '../../src/core/errors.js';
import { parseRuns } from '../../src/scaling/runs.js';

test('CSV and JSON give the same rows; empty cells mean high precision / no PTQ', () => {
  const csv = ['# two runs', 'N,D,w,a,kv,post,loss,id', '1e8,2e9,4,8,,,3.5,r1', '2e8,4e9,,,,3,3.4,"r,2"'].join('\n');
  const json = JSON.stringify({
    runs: [
      { N: 1e8, D: 2e9, train: { w: 4, a: 8 }, loss: 3.5, id: 'r1' },
      { N: 2e8, D: 4e9, post_bits: 3, loss: 3.4, id: 'r,2' },
    ],
  });
  const a = parseRuns(csv, 'runs.csv');
  const b = parseRuns(json, 'runs.json');
  assert.deepEqual(a, [
    { N: 1e8, D: 2e9, train: { w: 4, a: 8, kv: undefined }, loss: 3.5, id: 'r1' },
    { N: 2e8, D: 4e9, postBits: 3, loss: 3.4, id: 'r,2' },
  ]);
  assert.deepEqual(b, a);
  // train_bits ties the three widths
  assert.deepEqual(parseRuns('N,D,train_bits,loss\n1,2,6,3', 'x.csv')[0].train, { w: 6, a: 6, kv: 6 });
});

test('bad files name the file, the row and the field', () => {
  const cases: [string, string, string][] = [
    ['N,D\n1,2', 'x.csv', 'loss'],
    ['N,D,loss\n1,abc,3', 'x.csv', 'D'],
    ['N,D,loss\n-1,2,3', 'x.csv', 'N'],
    ['N,D,w,loss\n1,2,0.5,3', 'x.csv', 'w'],
    ['[{"N": 1, "D": 2}]', 'x.json', 'loss'],
  ];
  for (const [text, file, field] of cases) {
    assert.throws(
      () => parseRuns(text, file),
      (e: unknown) => e instanceof BitscaleError && e.context.file === file && e.context.field === field,
      `${text} → ${field}`,
    );
  }
  assert.throws(() => parseRuns('{oops', 'x.json'), /not valid JSON/);
  assert.throws(() => parseRuns('N,D,loss\n1,2', 'x.csv'), /wrong number of cells/);
  assert.throws(() => parseRuns('[]', 'x.json'), /no runs/);
});
