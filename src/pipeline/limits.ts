// Bounds on work a command line can ask for, checked before anything is allocated, so that a typo
// (`--windows 1000000000`) is a message instead of an out-of-memory abort minutes later.
// Legend: W = calibration windows, T = tokens per window, E = hidden size.

import { totalmem } from 'node:os';
import { ConfigError } from '../core/errors.js';
import type { ModelConfig } from '../model/config.js';

/** The most calibration windows any command accepts. */
export const MAX_WINDOWS = 1 << 16;

/**
 * Calibration keeps every window's hidden states [W, T, E] in f32, plus a copy per layer pass:
 * refuse when that exceeds half the machine's memory (the engine and the weights need the rest).
 */
export function checkCalibrationBudget(windows: number, seqLen: number, c: Pick<ModelConfig, 'hiddenSize'>, flag = '--windows'): void {
  if (!(Number.isSafeInteger(windows) && windows >= 1 && windows <= MAX_WINDOWS)) {
    throw new ConfigError('bad_option', 'calibration windows out of range', { field: flag, expected: `an integer in [1, ${MAX_WINDOWS}]`, found: windows });
  }
  const bytes = 2 * windows * seqLen * c.hiddenSize * 4;
  const budget = totalmem() / 2;
  if (bytes > budget) {
    const most = Math.max(1, Math.floor(budget / (2 * seqLen * c.hiddenSize * 4)));
    throw new ConfigError('bad_option', 'the calibration activations would not fit in memory', {
      field: flag,
      expected: `at most ${most} windows of ${seqLen} tokens for this model (hidden size ${c.hiddenSize}, ${(budget / 2 ** 30).toFixed(1)} GiB budget)`,
      found: `${windows} windows: ${(bytes / 2 ** 30).toFixed(1)} GiB`,
      hint: 'lower --windows or --seq-len',
    });
  }
}
