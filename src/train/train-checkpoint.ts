// Training checkpoints: one safetensors file with the parameters (canonical names, F32), the
// AdamW moments ("optim.m.<name>", "optim.v.<name>") and the run state in __metadata__, so that a
// resumed run continues bit for bit. The model config is stored too: resuming with another config
// is refused with the field that differs.

import { ConfigError, FormatError } from '../core/errors.js';
import { openSafetensorsFile, writeSafetensorsFile } from '../formats/io/containers.js';
import type { ModelConfig } from '../model/config.js';

export const CHECKPOINT_FORMAT = 'bitscale-train-checkpoint/1';

export interface CheckpointState {
  config: ModelConfig;
  /** optimizer steps completed */
  step: number;
  /** AdamW t (equals step unless resumed into a different schedule) */
  t: number;
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  /** run settings that must match on resume (seed, batch, context, QAT …), as JSON */
  run: Record<string, unknown>;
  /** free-form (last losses, tokens seen) */
  info?: Record<string, unknown>;
}

function shapeOf(name: string, n: number, shapes: Map<string, number[]>): number[] {
  return shapes.get(name) ?? [n];
}

export async function saveCheckpoint(path: string, s: CheckpointState, shapes: Map<string, number[]>): Promise<void> {
  const tensors = [];
  for (const [k, p] of s.params) tensors.push({ name: k, dtype: 'F32' as const, shape: shapeOf(k, p.length, shapes), data: p });
  for (const [k, p] of s.m) tensors.push({ name: `optim.m.${k}`, dtype: 'F32' as const, shape: shapeOf(k, p.length, shapes), data: p });
  for (const [k, p] of s.v) tensors.push({ name: `optim.v.${k}`, dtype: 'F32' as const, shape: shapeOf(k, p.length, shapes), data: p });
  await writeSafetensorsFile(path, tensors, {
    overwrite: true,
    metadata: {
      format: CHECKPOINT_FORMAT,
      config: JSON.stringify(s.config),
      step: String(s.step),
      t: String(s.t),
      run: JSON.stringify(s.run),
      info: JSON.stringify(s.info ?? {}),
    },
  });
}

export async function loadCheckpoint(path: string): Promise<CheckpointState> {
  const f = await openSafetensorsFile(path);
  try {
    const md = f.metadata;
    if (md.format !== CHECKPOINT_FORMAT) {
      throw new FormatError('bad_header', 'not a bitscale training checkpoint', { file: path, field: '__metadata__.format', expected: CHECKPOINT_FORMAT, found: md.format ?? '(none)' });
    }
    const params = new Map<string, Float32Array>();
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const name of f.names()) {
      const t = await f.readTensor(name);
      if (t.dtype !== 'F32') throw new FormatError('dtype_unknown', 'checkpoint tensors must be F32', { file: path, tensor: name, expected: 'F32', found: t.dtype });
      const d = Float32Array.from(t.data as Float32Array);
      if (name.startsWith('optim.m.')) m.set(name.slice(8), d);
      else if (name.startsWith('optim.v.')) v.set(name.slice(8), d);
      else params.set(name, d);
    }
    return {
      config: JSON.parse(md.config) as ModelConfig,
      step: Number(md.step),
      t: Number(md.t),
      params,
      m,
      v,
      run: JSON.parse(md.run ?? '{}') as Record<string, unknown>,
      info: JSON.parse(md.info ?? '{}') as Record<string, unknown>,
    };
  } finally {
    await f.close();
  }
}

/** Throws a ConfigError naming the first field of `want` that differs in `got`. */
export function assertSameSettings(what: string, file: string, want: Record<string, unknown>, got: Record<string, unknown>): void {
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
    const a = JSON.stringify(want[k]);
    const b = JSON.stringify(got[k]);
    if (a !== b) {
      throw new ConfigError('bad_config', `the checkpoint was trained with a different ${what}`, {
        file,
        field: k,
        expected: want[k],
        found: got[k],
        hint: `resume with the ${what} the checkpoint was made with, or start a new run in another --out directory`,
      });
    }
  }
}
