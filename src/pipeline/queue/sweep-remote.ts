// `bitscale sweep --queue`: every unfinished point (and the sensitivity scan) becomes a job; the
// coordinator records each result in sweep.json as it arrives, exactly as a local run records it.
// Job ids are the sweep's run id (a hash of its inputs' sha256 and every setting the numbers depend
// on) plus the point id, so a restarted coordinator finds the jobs it queued before.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { SensitivityRow, SweepPointResult, SweepPointSpec } from '../../eval/sweep-types.js';
import { sha256File } from '../../formats/io/index.js';
import { SELF_CALIBRATION } from '../calibrate/windows.js';
import { TOOL_VERSION } from '../quantize/quantize.js';
import { runRemoteJobs, type RemoteJob, type RemoteJobTiming } from './client.js';
import type { InputRef, SweepJobSettings } from './jobs.js';
import { hashPath, type SweepInputs } from '../sweep/point.js';
import { pointOut, type SweepOptions } from '../sweep/sweep.js';

async function ref(path: string, sha?: string): Promise<InputRef> {
  return { path: resolve(path), sha256: sha ?? (await hashPath(path)) };
}

/** The settings a worker needs, inputs as absolute paths with their sha256. */
export async function sweepJobSettings(o: SweepOptions, inputs: SweepInputs): Promise<SweepJobSettings> {
  const keyword = (v: string) => v === SELF_CALIBRATION || v === 'moby-dick';
  return {
    model: await ref(o.model, inputs.modelSha),
    text: await ref(o.text, inputs.textSha),
    ...(o.tokenizer ? { tokenizer: await ref(o.tokenizer) } : {}),
    ...(o.calib !== undefined ? { calib: keyword(o.calib) ? o.calib : { path: resolve(o.calib), sha256: await sha256File(o.calib) } } : {}),
    ...(o.qatText ? { qatText: await Promise.all(o.qatText.map((q) => (keyword(q) ? q : ref(q)))) } : {}),
    ctx: o.ctx,
    maxTokens: o.maxTokens,
    calibWindows: o.calibWindows,
    seed: o.seed ?? 0,
    ...(o.calibRuntime !== undefined ? { calibRuntime: o.calibRuntime } : {}),
    qatSteps: o.qatSteps,
    verify: o.verify ?? true,
  };
}

export interface RemoteSweep {
  inputs: SweepInputs;
  todo: SweepPointSpec[];
  sensitivityScheme: string | null;
  /** records one point (called once per point, in arrival order) */
  onPoint: (spec: SweepPointSpec, r: SweepPointResult) => Promise<void>;
}

export async function runSweepRemote(o: SweepOptions, s: RemoteSweep): Promise<{ sensitivity: SensitivityRow[]; timings: RemoteJobTiming[] }> {
  const settings = await sweepJobSettings(o, s.inputs);
  const outDir = resolve(o.outDir);
  // the output folder is part of the identity: two sweeps of one model into two folders are two runs
  const runId = createHash('sha256').update(JSON.stringify({ v: TOOL_VERSION, settings, outDir })).digest('hex').slice(0, 16);
  const jobs: RemoteJob[] = s.todo.map((spec) => ({ id: `sweep-${runId}-${spec.id}`, label: spec.id, data: { kind: 'sweep-point', tool: TOOL_VERSION, runId, settings, spec, out: resolve(pointOut(o.outDir, spec)) } }));
  if (s.sensitivityScheme) jobs.push({ id: `sweep-${runId}-sensitivity-${s.sensitivityScheme}`, label: `sensitivity ${s.sensitivityScheme}`, data: { kind: 'sweep-sensitivity', tool: TOOL_VERSION, runId, settings, scheme: s.sensitivityScheme } });
  const bySpec = new Map(s.todo.map((spec) => [`sweep-${runId}-${spec.id}`, spec]));
  let sensitivity: SensitivityRow[] = [];
  const timings = await runRemoteJobs({
    queue: o.queue!,
    jobs,
    task: 'sweep',
    onProgress: o.onProgress,
    log: o.log,
    signal: o.signal,
    onResult: async (job, result) => {
      const spec = bySpec.get(job.id);
      if (spec) await s.onPoint(spec, result as SweepPointResult);
      else sensitivity = result as SensitivityRow[];
    },
  });
  return { sensitivity, timings };
}
