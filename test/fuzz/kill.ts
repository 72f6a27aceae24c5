// The kill test: `bitscale quantize | convert | train | sweep` killed with SIGKILL at random points
// (seeded: a random delay after the command's first progress line, or from its start), then
// checked: nothing partial or foreign at any final path (each output is absent or complete and
// verified: it loads, and its manifest's sha256 matches the bytes beside it), nothing of the
// user's changed or deleted, and the next run of the same command succeeds and leaves no staging
// folder, temporary file or lock behind. Shared by the suite's short run (kill.test.ts) and the
// 50-kill run of `npm run fuzz`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { loadModel } from '../../src/model/load.js';
import { cliSpawn } from '../cli-run.js';
import { SHARED } from './cli-fuzz.js';

export interface KillCommand {
  name: string;
  argv: string[];
  /** outputs (relative to the work folder) that must be absent or complete after any kill */
  outputs: { path: string; kind: 'gguf' | 'hf' | 'sweep' | 'train' }[];
}

/** `workMs`: the range of the random delay before the kill (about the length of the command's work here). */
export const KILL_COMMANDS: (KillCommand & { workMs: number })[] = [
  { name: 'quantize', argv: ['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '2', '--seq-len', '32', '--no-verify', '--force'], outputs: [{ path: 'q.gguf', kind: 'gguf' }], workMs: 3000 },
  { name: 'quantize (folder)', argv: ['quantize', 'stories260K.bin', '--out', 'fq', '--format', 'fakequant', '--scheme', 'nf4-g32', '--force'], outputs: [{ path: 'fq', kind: 'hf' }], workMs: 3000 },
  { name: 'convert', argv: ['convert', 'stories260K.bin', 'hf', '--to', 'hf', '--force'], outputs: [{ path: 'hf', kind: 'hf' }], workMs: 1000 },
  { name: 'train', argv: ['train', '--config', 'tiny', '--text', 't.txt', '--out', 'run', '--steps', '40', '--vocab', '300', '--context', '32', '--batch', '2', '--ckpt-every', '10', '--val-every', '0', '--force'], outputs: [{ path: 'run', kind: 'train' }], workMs: 6000 },
  { name: 'sweep', argv: ['sweep', 'stories260K.bin', '--text', 't.txt', '--out', 'sw', '--bits', '4,8', '--methods', 'rtn', '--formats', 'gguf', '--no-sensitivity', '--no-verify', '--ctx', '64', '--max-tokens', '256'], outputs: [{ path: 'sw', kind: 'sweep' }], workMs: 8000 },
];

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** A work folder with the model, a text, and a user's own files (which no run may touch). */
export function killWorkdir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bitscale-kill-'));
  for (const f of ['stories260K.bin', 'tok512.bin']) copyFileSync(join(SHARED, 'models/stories260K', f), join(d, f));
  writeFileSync(join(d, 't.txt'), readFileSync(join(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8').slice(0, 6000));
  mkdirSync(join(d, 'mine'));
  writeFileSync(join(d, 'mine', 'notes.txt'), 'the user wrote this');
  writeFileSync(join(d, 'q.gguf.notes'), 'beside an output, but not one');
  return d;
}

/** sha256 of every file outside the outputs and bitscale's own temporaries: the user's. */
export function userFiles(d: string, outputs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(d, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const top = r.split('/')[0];
      if (outputs.some((o) => top === o || top === `${o}.manifest.json` || top === `${o}.partial`) || top.startsWith('.') || /\.tmp-\d+-[0-9a-f]+$/.test(top)) continue;
      if (e.isDirectory()) walk(r);
      else out.set(r, sha(join(d, r)));
    }
  };
  walk('');
  return out;
}

/** An output after a kill: absent, or complete (it loads; its manifest describes these bytes). */
export async function checkOutput(d: string, o: KillCommand['outputs'][number]): Promise<'absent' | 'complete'> {
  const p = join(d, o.path);
  if (!existsSync(p)) {
    assert.ok(!existsSync(`${p}.manifest.json`), `${o.path}: a manifest without its output`);
    return 'absent';
  }
  if (o.kind === 'sweep') {
    // a workspace: whatever is in it is complete (each file atomic), and resumable
    if (existsSync(join(p, 'sweep.json'))) JSON.parse(readFileSync(join(p, 'sweep.json'), 'utf8'));
    for (const f of existsSync(join(p, 'points')) ? readdirSync(join(p, 'points')) : []) {
      if (f.endsWith('.gguf')) await checkOutput(join(p, 'points'), { path: f, kind: 'gguf' });
    }
    return 'complete';
  }
  const manifest = o.kind === 'gguf' ? `${p}.manifest.json` : join(p, 'bitscale-manifest.json');
  if (o.kind !== 'gguf') assert.ok(existsSync(manifest), `${o.path}: a folder output without its manifest`);
  if (existsSync(manifest)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { output: { sha256: Record<string, string> } };
    for (const [f, h] of Object.entries(m.output.sha256)) assert.equal(sha(o.kind === 'gguf' ? p : join(p, f)), h, `${o.path}/${f}: bytes differ from the manifest`);
  }
  const m = await loadModel(p, o.kind === 'train' || o.kind === 'hf' ? {} : { tokenizer: null });
  try {
    for (const t of m.tensors.values()) await t.read();
  } finally {
    await m.close();
  }
  return 'complete';
}

/** Leftovers a finished run must not leave: staging folders, temporaries, locks (workspace locks are released too). */
export function leftovers(d: string): string[] {
  const bad: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (/\.tmp-|\.lock$|\.partial$/.test(e.name)) bad.push(join(dir, e.name));
      else if (e.isDirectory() && e.name !== 'mine') walk(join(dir, e.name));
    }
  };
  walk(d);
  return bad;
}

export interface KillStats {
  command: string;
  kills: number;
  /** kills that landed after the command had started its work (a progress line was printed) */
  duringWork: number;
  absentAfterKill: number;
  completeAfterKill: number;
  reruns: number;
}

/**
 * `kills` SIGKILLs of `cmd` at seeded random points, each followed by the checks above; a normal
 * run at the end must succeed and leave nothing behind. `workMs`: the range of the random delay.
 */
export async function killTest(d: string, cmd: KillCommand, kills: number, seed: number, workMs: number): Promise<KillStats> {
  const rng = new Rng(seed);
  const stats: KillStats = { command: cmd.name, kills: 0, duringWork: 0, absentAfterKill: 0, completeAfterKill: 0, reruns: 0 };
  const outs = cmd.outputs.map((o) => o.path);
  const before = userFiles(d, outs);
  for (let k = 0; k < kills; k++) {
    const { child, done } = cliSpawn(cmd.argv, d);
    const fromProgress = rng.nextU32() % 4 !== 0;
    const delay = (rng.nextU32() % 1000) / 1000 * workMs;
    let started = false;
    await new Promise<void>((res) => {
      const fire = () => setTimeout(() => {
        child.kill('SIGKILL');
        res();
      }, delay);
      if (!fromProgress) return fire();
      const onData = (b: Buffer) => {
        if (started || !/^\[\w/m.test(b.toString())) return;
        started = true;
        fire();
      };
      child.stderr?.on('data', onData);
      // a run that ends before printing progress is fine too
      child.on('exit', () => res());
    });
    const r = await done;
    stats.kills++;
    if (started) stats.duringWork++;
    if (r.signal !== 'SIGKILL' && r.status !== 0) assert.fail(`${cmd.name}: run ${k} failed before the kill: ${r.stderr}`);
    for (const o of cmd.outputs) {
      const state = await checkOutput(d, o);
      if (state === 'absent') stats.absentAfterKill++;
      else stats.completeAfterKill++;
    }
    assert.deepEqual(userFiles(d, outs), before, `${cmd.name}: a user's file changed after kill ${k}`);
  }
  const last = await cliSpawn(cmd.argv, d).done;
  assert.equal(last.status, 0, `${cmd.name}: the run after the kills failed\n${last.stderr}`);
  stats.reruns++;
  for (const o of cmd.outputs) assert.equal(await checkOutput(d, o), 'complete', `${cmd.name}: ${o.path} after a clean run`);
  assert.deepEqual(leftovers(d), [], `${cmd.name}: left behind after a clean run`);
  assert.deepEqual(userFiles(d, outs), before);
  assert.ok(statSync(join(d, 'mine', 'notes.txt')).isFile());
  return stats;
}
