// What travels through the queue: one job per sweep point, one for a sweep's sensitivity scan,
// one per training run of a law experiment (with the PTQ variants that share it), and the typed
// error a job fails with. Inputs travel by reference: an absolute path on the coordinator plus the
// sha256 of its bytes; a worker reads the same path (or its --map rewrite) on shared storage and
// refuses to run when the hash differs.
import { BitscaleError, ConfigError, FormatError, IoError, NumericError, ShapeError, type ErrorCode, type ErrorContext } from '../../core/errors.js';
import type { SensitivityRow, SweepPointResult, SweepPointSpec } from '../../eval/sweep-types.js';
import type { ExperimentGrid, LawRunExtra } from '../law/experiment.js';
import type { LawGridPoint } from '../law/law.js';

/** One queue for every kind of job: any `bitscale worker` serves sweeps and law experiments alike. */
export const QUEUE_NAME = 'bitscale';

/** A file or directory the coordinator hashed: the worker must find the same bytes at `path`. */
export interface InputRef {
  path: string;
  sha256: string;
}

/** The sweep options a point's numbers depend on, with every input as a hashed reference. */
export interface SweepJobSettings {
  model: InputRef;
  text: InputRef;
  tokenizer?: InputRef;
  /** a calibration file, or the quantizer's keyword ('self') */
  calib?: InputRef | string;
  qatText?: (InputRef | string)[];
  ctx?: number;
  maxTokens?: number;
  calibWindows?: number;
  seed: number;
  calibRuntime?: 'native' | 'portable';
  qatSteps?: number;
  verify: boolean;
}

interface JobCommon {
  /** the coordinator's bitscale version: a worker of another version refuses the job */
  tool: string;
}

export interface SweepPointJob extends JobCommon {
  kind: 'sweep-point';
  /** identifies the sweep (hash of its inputs and settings); workers cache the base model by it */
  runId: string;
  settings: SweepJobSettings;
  spec: SweepPointSpec;
  /** absolute path of the point's output file on the coordinator */
  out: string;
}

export interface SweepSensitivityJob extends JobCommon {
  kind: 'sweep-sensitivity';
  runId: string;
  settings: SweepJobSettings;
  scheme: string;
}

export interface LawRunJob extends JobCommon {
  kind: 'law-run';
  runId: string;
  grid: ExperimentGrid;
  /** sha256 of the corpus text the grid trains on */
  corpusSha256: string;
  /** the points of one training run still missing from the runs file (its PTQ variants) */
  points: LawGridPoint[];
}

export type QueueJobData = SweepPointJob | SweepSensitivityJob | LawRunJob;

export interface LawRunJobResult {
  runs: { key: string; loss: number; extra: LawRunExtra }[];
}

export type QueueJobResult = SweepPointResult | SensitivityRow[] | LawRunJobResult;

/** BullMQ moves a job straight to failed, without retries, when its error carries this name. */
export const UNRECOVERABLE = 'UnrecoverableError';

const WIRE_TAG = 'bitscale-error/1';

/** A typed error as the text of a job's failure: deterministic failures are not retried. */
export function encodeJobError(e: BitscaleError): string {
  return JSON.stringify({ tag: WIRE_TAG, cls: e.name, code: e.code, message: e.message, context: e.context });
}

const CLASSES: Record<string, new (code: ErrorCode, what: string, ctx?: ErrorContext) => BitscaleError> = { ConfigError, FormatError, IoError, NumericError, ShapeError, BitscaleError };

/** The typed error a job failed with, rebuilt from its failure text (null for any other failure). */
export function decodeJobError(text: string | undefined): BitscaleError | null {
  if (!text || !text.startsWith('{')) return null;
  let j: { tag?: string; cls?: string; code?: ErrorCode; message?: string; context?: ErrorContext };
  try {
    j = JSON.parse(text) as typeof j;
  } catch {
    return null;
  }
  if (j.tag !== WIRE_TAG || !j.code) return null;
  const Cls = CLASSES[j.cls ?? ''] ?? BitscaleError;
  const e = new Cls(j.code, j.message ?? '', {});
  // keep the worker's exact message and structured context
  Object.assign(e, { message: j.message ?? '', context: j.context ?? {} });
  return e;
}
