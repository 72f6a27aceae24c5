// safetensors I/O throughput on a multi-GB file in os.tmpdir() (BITSCALE_BENCH_GB, default 2):
// header parse time, streaming read MB/s (tensor by tensor through openSafetensorsFile) and
// streaming write MB/s (writeSafetensorsFile: atomic, fsynced), each against a plain file copy
// (4 MiB read/write loop + fsync, i.e. what any tool pays to move the bytes) measured in the same
// run. fs.copyFile is reported too (it may use copy_file_range and skip user space).
// The files are deleted afterwards. Page-cache effects apply equally to us and to the copy.
import { copyFileSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/core/rng.js';
import { openSafetensorsFile, writeSafetensorsFile } from '../src/formats/io/index.js';
import type { SafetensorsWriteTensor } from '../src/formats/safetensors/index.js';
import { fmt, median } from './util.js';

const TENSOR_BYTES = 64 << 20;
const REPEATS = 5;

async function plainCopy(src: string, dst: string): Promise<void> {
  const a = await open(src, 'r');
  const b = await open(dst, 'w');
  const buf = new Uint8Array(4 << 20);
  for (;;) {
    const { bytesRead } = await a.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    let off = 0;
    while (off < bytesRead) off += (await b.write(buf, off, bytesRead - off)).bytesWritten;
  }
  await b.sync();
  await a.close();
  await b.close();
}

export default async function main(): Promise<void> {
  let gb = Number(process.env.BITSCALE_BENCH_GB ?? '2');
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-bench-st-'));
  try {
    const st = statfsSync(dir);
    const free = st.bavail * st.bsize;
    if (free < 2.2 * gb * 2 ** 30) {
      gb = Math.max(0.25, Math.floor((free / 2.2 / 2 ** 30) * 4) / 4);
      console.log(`only ${fmt(free / 2 ** 30)} GiB free in ${tmpdir()}: using ${gb} GiB`);
    }
    const nTensors = Math.max(1, Math.round((gb * 2 ** 30) / TENSOR_BYTES));
    const totalBytes = nTensors * TENSOR_BYTES;
    const mb = totalBytes / 1e6;
    // one buffer of seeded noise reused for every tensor (generation cost stays out of the timing)
    const rng = new Rng(1);
    const payload = new Uint8Array(TENSOR_BYTES);
    const words = new Uint32Array(payload.buffer);
    for (let i = 0; i < words.length; i++) words[i] = rng.nextU32();
    const tensors: SafetensorsWriteTensor[] = Array.from({ length: nTensors }, (_, i) => ({
      name: `model.layers.${i}.mlp.weight`,
      dtype: 'F32',
      shape: [TENSOR_BYTES / 4 / 4096, 4096],
      produce: () => payload,
    }));
    const file = join(dir, 'model.safetensors');
    const copy = join(dir, 'copy.safetensors');
    console.log(`file: ${nTensors} tensors × 64 MiB = ${fmt(totalBytes / 2 ** 30, 2)} GiB in ${dir}`);

    // Runs are interleaved (write, copy, copyFile, read in each round) so that drift in this
    // VM's disk speed hits us and the peer alike. Each timed write goes to a path deleted
    // beforehand (untimed), for us and for the copies: replacing a live file makes the
    // filesystem allocate fresh blocks while the old ones are still held, which on this disk
    // halves write speed and would skew the ratio.
    const times = { write: [] as number[], copy: [] as number[], copyFile: [] as number[], read: [] as number[] };
    const timed = async (target: string | null, fn: () => unknown): Promise<number> => {
      if (target) rmSync(target, { force: true });
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    const readAll = async (): Promise<void> => {
      const f = await openSafetensorsFile(file);
      for (const n of f.names()) await f.readBytes(n);
      await f.close();
    };
    for (let r = 0; r < REPEATS; r++) {
      times.write.push(await timed(file, () => writeSafetensorsFile(file, tensors)));
      times.copy.push(await timed(copy, () => plainCopy(file, copy)));
      times.copyFile.push(await timed(copy, () => copyFileSync(file, copy)));
      times.read.push(await timed(null, readAll));
    }
    const parseTimes: number[] = [];
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      const f = await openSafetensorsFile(file);
      parseTimes.push(performance.now() - t0);
      await f.close();
    }
    const [writeMs, copyMs, copyFileMs, readMs] = [times.write, times.copy, times.copyFile, times.read].map(median);

    const copyMBs = mb / (copyMs / 1000);
    const readMBs = mb / (readMs / 1000);
    const writeMBs = mb / (writeMs / 1000);
    console.log(`header parse (open + parse ${nTensors} entries): median ${fmt(median(parseTimes), 3)} ms`);
    console.log(`streaming read : ${fmt(readMBs, 0)} MB/s (median of ${REPEATS}; the file was just written, so mostly page cache)`);
    console.log(`streaming write: ${fmt(writeMBs, 0)} MB/s (atomic, fsync; median of ${REPEATS})`);
    console.log(`plain copy     : ${fmt(copyMBs, 0)} MB/s (4 MiB read/write loop + fsync); fs.copyFile ${fmt(mb / (copyFileMs / 1000), 0)} MB/s`);
    console.log(`ratio read/copy = ${fmt(readMBs / copyMBs, 2)}, write/copy = ${fmt(writeMBs / copyMBs, 2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
