// The web benchmark's reading of Chromium's memory-infra dumps (bench/memory-infra.ts): a trace
// written here by hand in the shape Chromium 156 writes (one dump's process totals and allocators
// in separate events of one id, sizes as hex strings, dumps numbered in the order taken), the
// per-owner sums checked against the numbers put in; then one real dump of a Chromium tab, where
// the owners the benchmark reports must be present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatorTable, dumpIds, dumpOf, dumpsFromTrace, normGuid, topAllocators, type TraceEvent } from '../../bench/memory-infra.js';
import { TabHeaps, freePort } from '../../bench/cdp-heaps.js';
import { launchChromium, webSkip } from './harness.js';

const hex = (n: number) => n.toString(16);
const size = (n: number) => ({ attrs: { size: { type: 'scalar', units: 'bytes', value: hex(n) } } });
const MB = 1 << 20;

/** Two dumps (0x0 then 0x1) of a renderer (pid 7) and a browser (pid 1), as Chromium writes them. */
function trace(): TraceEvent[] {
  const meta = [
    { ph: 'M', name: 'process_name', pid: 1, args: { name: 'Browser' } },
    { ph: 'M', name: 'process_name', pid: 7, args: { name: 'Renderer' } },
  ];
  const dump = (id: string, ts: number, rendererAb: number, workerHeap: number): TraceEvent[] => [
    { ph: 'v', id, ts, pid: 7, args: { dumps: { process_totals: { private_footprint_bytes: hex(40 * MB + rendererAb), peak_resident_set_size: hex(200 * MB) } } } },
    {
      ph: 'v', id, ts, pid: 7,
      args: {
        dumps: {
          allocators: {
            malloc: size(20 * MB),
            'malloc/partitions': size(19 * MB),
            partition_alloc: size(rendererAb + 4 * MB),
            'partition_alloc/partitions': size(rendererAb + 4 * MB),
            'partition_alloc/partitions/array_buffer': size(rendererAb),
            'partition_alloc/partitions/buffer': size(4 * MB),
            // an unsized parent: its children's sum stands for it
            'v8/main': size(5 * MB),
            'v8/workers': size(workerHeap),
            'blink_gc/main': { attrs: { object_count: { type: 'scalar', units: 'objects', value: '10' } } },
          },
        },
      },
    },
    { ph: 'v', id, ts, pid: 1, args: { dumps: { process_totals: { private_footprint_bytes: hex(44 * MB) }, allocators: { malloc: size(27 * MB) } } } },
  ];
  // written out of order: the ids' order comes from the timestamps
  return [...meta, ...dump('0x1', 2000, 25 * MB, 19 * MB), ...dump('0x0', 1000, MB, 5 * MB)];
}

test('memory-infra dumps: one entry per process per dump, hex sizes read, events of one id merged', () => {
  const d = dumpsFromTrace(trace());
  assert.deepEqual(dumpIds(d), ['0x0', '0x1']);
  const r = dumpOf(d, '0x1');
  assert.equal(r.length, 1);
  assert.equal(r[0].privateFootprint, 40 * MB + 25 * MB);
  assert.equal(r[0].resident, 200 * MB);
  assert.equal(r[0].sizes.get('partition_alloc/partitions/array_buffer'), 25 * MB);
  assert.equal(r[0].sizes.has('blink_gc/main'), false, 'a node without a size in bytes is not a size');
  assert.equal(dumpOf(d, '0x1', 'Browser')[0].sizes.get('malloc'), 27 * MB);
  assert.equal(normGuid('26'), '0x1a');
  assert.equal(normGuid('0x1A'), '0x1a');
});

test('memory-infra owners: top-level allocators, the expanded ones one level down, unsized parents as their children', () => {
  const d = dumpsFromTrace(trace());
  const o = topAllocators(dumpOf(d, '0x1'));
  assert.equal(o.get('malloc'), 20 * MB);
  assert.equal(o.get('partition_alloc/partitions/array_buffer'), 25 * MB);
  assert.equal(o.get('partition_alloc/partitions/buffer'), 4 * MB);
  assert.equal(o.get('v8'), 5 * MB + 19 * MB, 'v8 has no size of its own');
  assert.equal(o.get('v8/workers'), 19 * MB);
  assert.equal(o.has('malloc/partitions'), false, 'malloc is not expanded');
  const lines = allocatorTable([
    { label: 'loaded', owners: topAllocators(dumpOf(d, '0x0')) },
    { label: 'peak', owners: o },
  ]);
  assert.ok(lines.includes('| partition_alloc/partitions/array_buffer | 1.0 | 26.2 | +25.2 |'), lines.join('\n'));
  assert.ok(lines.includes('| v8/workers | 5.2 | 19.9 | +14.7 |'), lines.join('\n'));
});


test('a real memory-infra dump of a Chromium tab names the owners the benchmark reports', { skip: webSkip() }, async () => {
  const port = await freePort();
  const browser = await launchChromium([`--remote-debugging-port=${port}`]);
  try {
    const page = await browser.newPage();
    // a worker holding a 16 MiB ArrayBuffer: it must show in the array_buffer partition
    await page.setContent('<p>memory-infra</p>');
    await page.evaluate(() => {
      (window as unknown as { held: ArrayBuffer }).held = new ArrayBuffer(16 << 20);
      new Uint8Array((window as unknown as { held: ArrayBuffer }).held).fill(1);
    });
    const heaps = await TabHeaps.connect(port);
    try {
      assert.ok(await heaps.startMemoryTrace(), 'Tracing.start refused');
      assert.ok(await heaps.dump(), 'Tracing.requestMemoryDump refused');
      const d = dumpsFromTrace((await heaps.endMemoryTrace()) as Parameters<typeof dumpsFromTrace>[0]);
      const ids = dumpIds(d);
      assert.equal(ids.length, 1);
      const r = dumpOf(d, ids[0]);
      assert.ok(r.length >= 1, `no Renderer process in the dump (${[...new Set(d.map((p) => p.process))].join(', ')})`);
      const o = topAllocators(r);
      for (const k of ['malloc', 'v8', 'blink_gc', 'partition_alloc/partitions/array_buffer']) assert.ok((o.get(k) ?? 0) > 0, `${k} missing: ${[...o.keys()].join(', ')}`);
      assert.ok(o.get('partition_alloc/partitions/array_buffer')! >= 16 << 20, `the page's 16 MiB ArrayBuffer: ${o.get('partition_alloc/partitions/array_buffer')}`);
      assert.ok(r.some((p) => p.privateFootprint > 0));
    } finally {
      heaps.close();
    }
  } finally {
    await browser.close();
  }
});
