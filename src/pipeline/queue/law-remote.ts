// `bitscale law experiment --queue`: one job per training run still missing from runs.json (the
// job measures that run's PTQ variants too, on the model it trained). The coordinator appends each
// finished run to runs.json as it arrives and keeps the file in grid order, so a queued experiment
// writes the file a local one writes; finished runs are never queued again.
import { createHash } from 'node:crypto';
import type { ProgressFn } from '../../core/progress.js';
import { atomicWriteFile } from '../../formats/io/file.js';
import { checkRow } from '../../scaling/index.js';
import { gridCorpusSha256, precisionLabel, trainedKey, type ExperimentGrid } from '../law/experiment.js';
import { pointKey, readRunsFile, type ExperimentResult, type ExperimentRun, type LawGridPoint } from '../law/law.js';
import { TOOL_VERSION } from '../quantize/quantize.js';
import { runRemoteJobs, type QueueSettings, type RemoteJob, type RemoteJobTiming } from './client.js';
import type { LawRunJobResult } from './jobs.js';

export interface RemoteLawJob {
  grid: ExperimentGrid;
  /** the grid's points in plan order */
  plan: LawGridPoint[];
  runsFile: string;
  queue: QueueSettings;
  onProgress?: ProgressFn;
  onRun?: (key: string, loss: number, extra: Record<string, unknown>) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export async function runLawExperimentRemote(o: RemoteLawJob): Promise<ExperimentResult & { timings: RemoteJobTiming[] }> {
  const runs = await readRunsFile(o.runsFile);
  const done = new Set(runs.map((r) => r.key));
  const order = new Map<string, number>();
  const groups = new Map<string, LawGridPoint[]>();
  let unique = 0;
  for (const p of o.plan) {
    const k = pointKey(p);
    if (order.has(k)) continue; // a grid listing a point twice trains it once
    order.set(k, unique++);
    if (done.has(k)) continue;
    const g = groups.get(trainedKey(p)) ?? [];
    g.push(p);
    groups.set(trainedKey(p), g);
  }
  const corpusSha256 = gridCorpusSha256(o.grid);
  const runId = createHash('sha256').update(JSON.stringify({ v: TOOL_VERSION, grid: o.grid, corpusSha256 })).digest('hex').slice(0, 16);
  const jobs: RemoteJob[] = [...groups.values()].map((points) => ({
    id: `law-${runId}-${createHash('sha256').update(JSON.stringify(points.map(pointKey))).digest('hex').slice(0, 16)}`,
    label: `N=${points[0].N} D=${points[0].D} ${precisionLabel(points[0].train)}`,
    data: { kind: 'law-run', tool: TOOL_VERSION, runId, grid: o.grid, corpusSha256, points },
  }));
  const rank = (r: ExperimentRun) => order.get(r.key) ?? Number.MAX_SAFE_INTEGER;
  const reused = [...order.keys()].filter((k) => done.has(k)).length;
  let computed = 0;
  const timings = await runRemoteJobs({
    queue: o.queue,
    jobs,
    task: 'law-experiment',
    onProgress: o.onProgress,
    log: o.log,
    signal: o.signal,
    onResult: async (job, result) => {
      if (job.data.kind !== 'law-run') return;
      const byKey = new Map(job.data.points.map((p) => [pointKey(p), p]));
      for (const r of (result as LawRunJobResult).runs) {
        const p = byKey.get(r.key);
        if (!p || done.has(r.key)) continue; // a run is recorded once
        const row: ExperimentRun = { N: p.N, D: p.D, loss: r.loss, key: r.key, ...(p.train ? { train: p.train } : {}), ...(p.postBits !== undefined ? { postBits: p.postBits } : {}), extra: r.extra };
        checkRow(row, o.runsFile, runs.length);
        runs.push(row);
        done.add(r.key);
        computed++;
        o.onRun?.(r.key, r.loss, r.extra);
      }
      runs.sort((a, b) => rank(a) - rank(b));
      await atomicWriteFile(o.runsFile, JSON.stringify({ version: 1, runs }, null, 1) + '\n', { overwrite: true });
    },
  });
  return { runs, computed, reused, timings };
}
