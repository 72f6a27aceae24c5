// Writing a large output (issue 12): AtomicFileSink through the page cache (`pageCache: true`)
// against its default (whole 8 MiB blocks with O_DIRECT, src/formats/io/staged-writes.ts), the bytes
// of a Q4_0 Llama-3.2-1B (about 0.7 GB) in the 64 MiB pieces a tensor writer hands over, close
// (fsync, rename) included. Wall time and CPU seconds of this process (user + system: the write
// system calls run on libuv threads of this process), medians, the two ways alternating.
// Usage: npm run bench output-write. BITSCALE_WRITE_MB=704 (size), BITSCALE_WRITE_REPEATS=3,
// BITSCALE_WRITE_DIR=/tmp/… (a disk-backed folder: tmpfs refuses O_DIRECT, both rows are then the page cache).
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomicFileSink } from '../src/formats/io/index.js';
import { fmt, median } from './util.js';

export default async function (): Promise<void> {
  const mb = Number(process.env.BITSCALE_WRITE_MB ?? 704);
  const repeats = Number(process.env.BITSCALE_WRITE_REPEATS ?? 3);
  const dir = join(process.env.BITSCALE_WRITE_DIR ?? tmpdir(), `bitscale-write-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const piece = new Uint8Array(64 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const run = async (pageCache: boolean): Promise<{ s: number; cpu: number; direct: boolean }> => {
    const out = join(dir, 'out.bin');
    rmSync(out, { force: true });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const sink = await AtomicFileSink.create(out, { pageCache });
    for (let left = mb << 20; left > 0; left -= piece.length) await sink.write(left >= piece.length ? piece : piece.subarray(0, left));
    const direct = sink.bypassesPageCache;
    await sink.close();
    const c = process.cpuUsage(c0);
    return { s: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6, direct };
  };
  console.log(`${mb} MB in 64 MiB pieces, ${repeats} runs each after one untimed run, alternating; load average ${loadavg().map((x) => fmt(x, 1)).join(' ')} (shared machine)`);
  try {
    await run(true);
    await run(false);
    const rows = { cache: [] as { s: number; cpu: number }[], direct: [] as { s: number; cpu: number; direct: boolean }[] };
    for (let r = 0; r < repeats; r++) {
      rows.cache.push(await run(true));
      rows.direct.push(await run(false));
    }
    const m = (xs: { s: number; cpu: number }[]) => ({ s: median(xs.map((x) => x.s)), cpu: median(xs.map((x) => x.cpu)) });
    const [a, b] = [m(rows.cache), m(rows.direct)];
    console.log('| AtomicFileSink | wall s | CPU s |');
    console.log('|---|---|---|');
    console.log(`| through the page cache | ${fmt(a.s, 2)} | ${fmt(a.cpu, 2)} |`);
    console.log(`| default (${rows.direct.every((x) => x.direct) ? 'O_DIRECT blocks' : 'O_DIRECT refused here: page cache'}) | ${fmt(b.s, 2)} | ${fmt(b.cpu, 2)} |`);
    console.log(`CPU ratio ${fmt(a.cpu / Math.max(b.cpu, 1e-3), 1)}×, wall ratio ${fmt(a.s / b.s, 2)}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
