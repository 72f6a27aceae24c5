// Progress events for long work. Library code reports through a callback and checks an
// AbortSignal between steps; only cli/ prints. The ETA is a plain linear extrapolation.

import { BitscaleError } from './errors.js';

export interface ProgressEvent {
  /** what is running, e.g. 'quantize', 'train', 'eval' */
  task: string;
  /** units done and total (layers, steps, windows, tensors) */
  done: number;
  total: number;
  /** unit label, e.g. 'layer', 'step' */
  unit?: string;
  /** a short detail, e.g. the tensor name or the current loss */
  detail?: string;
  /** seconds elapsed since the task began */
  elapsedS: number;
  /** estimated seconds left, or null before the first unit completes */
  etaS: number | null;
}

export type ProgressFn = (e: ProgressEvent) => void;

/** Tracks elapsed time and ETA for one task; `tick()` emits an event. */
export class ProgressTracker {
  private readonly start = Date.now();
  private done = 0;

  constructor(
    private readonly task: string,
    private readonly total: number,
    private readonly onProgress?: ProgressFn,
    private readonly unit?: string,
  ) {}

  tick(detail?: string, n = 1): void {
    this.done += n;
    this.emit(detail);
  }

  emit(detail?: string): void {
    if (!this.onProgress) return;
    const elapsedS = (Date.now() - this.start) / 1000;
    const etaS = this.done > 0 ? (elapsedS / this.done) * Math.max(0, this.total - this.done) : null;
    this.onProgress({ task: this.task, done: this.done, total: this.total, unit: this.unit, detail, elapsedS, etaS });
  }
}

/** Throws the signal's reason as an 'interrupted' error if it has been aborted. */
export function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    throw new BitscaleError('interrupted', 'interrupted', { hint: 'the run was cancelled; completed work was kept' });
  }
}

/**
 * Progress over steps of unequal cost (a layer's calibration runs, then its tensors' column
 * blocks): each step is given its estimated work, `done`/`total` are percent of the work, and the
 * ETA extrapolates the time per unit of work measured so far.
 */
export class WorkProgress {
  private readonly start = Date.now();
  private doneWork = 0;

  constructor(
    private readonly task: string,
    private readonly totalWork: number,
    private readonly onProgress?: ProgressFn,
  ) {}

  /** Adds `work` done and emits an event with `detail`. */
  advance(work: number, detail?: string): void {
    this.doneWork = Math.min(this.totalWork, this.doneWork + work);
    if (!this.onProgress) return;
    const elapsedS = (Date.now() - this.start) / 1000;
    const frac = this.totalWork > 0 ? this.doneWork / this.totalWork : 1;
    const etaS = this.doneWork > 0 ? (elapsedS / this.doneWork) * (this.totalWork - this.doneWork) : null;
    this.onProgress({ task: this.task, done: Math.floor(100 * frac), total: 100, detail, elapsedS, etaS });
  }
}
