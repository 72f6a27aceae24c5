// onnxruntime's Gemm behind the numerics `Gemm` signature, so that pure algorithms (GPTQ, the
// blocked Cholesky) run their matrix products at MatMul speed. One single-node model per variant
// (transA, transB, α, β, with or without C) with symbolic dimensions, opened on first use; the
// operands are fed without copies and C is written in place (a preallocated output that is also
// the C input: the node reads C before it writes the result).
// Legend: C [M, N] ← α·op(A)·op(B) + β·C (numerics/gemm.ts).

import { ATTR, encodeModel, onnxDataType, type ValueInfoProtoJs } from '../formats/onnx/proto.js';
import { checkGemmArgs, type Gemm, type GemmArgs } from '../numerics/gemm.js';
import { IR_VERSION, OPSET } from './lower.js';
import { EngineSession, type SessionOptions } from './session.js';

const ONNX_F32 = onnxDataType('F32');
/** Largest C handed to one onnxruntime call (elements: 16 MB of float32). */
const GEMM_BAND_ELEMS = 1 << 22;

function vi(name: string, dims: string[]): ValueInfoProtoJs {
  return { name, type: { tensor_type: { elem_type: ONNX_F32, shape: { dim: dims.map((d) => ({ dim_param: d })) } } } };
}

/** The ONNX bytes of one Gemm variant. */
export function gemmModel(transA: boolean, transB: boolean, alpha: number, beta: number): Uint8Array {
  const withC = beta !== 0;
  const inputs = [vi('A', transA ? ['K', 'M'] : ['M', 'K']), vi('B', transB ? ['N', 'K'] : ['K', 'N'])];
  if (withC) inputs.push(vi('C', ['M', 'N']));
  return encodeModel({
    ir_version: IR_VERSION,
    producer_name: 'bitscale',
    producer_version: '0.1.0',
    graph: {
      name: 'gemm',
      node: [{
        op_type: 'Gemm',
        input: withC ? ['A', 'B', 'C'] : ['A', 'B'],
        output: ['Y'],
        attribute: [
          { name: 'transA', type: ATTR.INT, i: transA ? 1 : 0 },
          { name: 'transB', type: ATTR.INT, i: transB ? 1 : 0 },
          { name: 'alpha', type: ATTR.FLOAT, f: alpha },
          { name: 'beta', type: ATTR.FLOAT, f: beta },
        ],
      }],
      initializer: [],
      input: inputs,
      output: [vi('Y', ['M', 'N'])],
    },
    opset_import: [{ domain: '', version: OPSET }],
  });
}

/** A Gemm on onnxruntime with its own call statistics (flops and seconds spent inside it). */
export class OrtGemm {
  private readonly sessions = new Map<string, Promise<EngineSession>>();
  /** 2·M·N·K summed over calls */
  flops = 0;
  /** wall seconds inside onnxruntime calls */
  seconds = 0;
  calls = 0;

  constructor(private readonly opts: SessionOptions = {}) {}

  /** The Gemm function (bound; pass it to algorithms). */
  readonly gemm: Gemm = (g: GemmArgs) => this.run(g);

  private session(transA: boolean, transB: boolean, alpha: number, beta: number): Promise<EngineSession> {
    const key = `${+transA}${+transB}:${alpha}:${beta}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = EngineSession.fromOnnx(gemmModel(transA, transB, alpha, beta), this.opts);
      this.sessions.set(key, s);
    }
    return s;
  }

  private async run(g: GemmArgs): Promise<void> {
    checkGemmArgs(g);
    const { m, n, k } = g;
    if (m === 0 || n === 0) return;
    const alpha = g.alpha ?? 1;
    const beta = g.beta ?? 0;
    if (k === 0) {
      for (let i = 0; i < g.c.length; i++) g.c[i] = beta === 0 ? 0 : beta * g.c[i];
      return;
    }
    const s = await this.session(!!g.transA, !!g.transB, alpha, beta);
    // onnxruntime allocates a result as large as C inside the call (then copies it into C): large
    // products run in bands of rows of C, so that this stays a few MB (rows of op(A) are
    // contiguous unless A is transposed)
    const rows = g.transA ? m : Math.max(1, Math.min(m, Math.floor(GEMM_BAND_ELEMS / n)));
    const B = { dtype: 'F32' as const, shape: g.transB ? [n, k] : [k, n], data: g.b };
    const t0 = performance.now();
    for (let r0 = 0; r0 < m; r0 += rows) {
      const mr = Math.min(rows, m - r0);
      const c = g.c.subarray(r0 * n, (r0 + mr) * n);
      const feeds = {
        A: { dtype: 'F32' as const, shape: g.transA ? [k, m] : [mr, k], data: g.transA ? g.a : g.a.subarray(r0 * k, (r0 + mr) * k) },
        B,
        ...(beta !== 0 ? { C: { dtype: 'F32' as const, shape: [mr, n], data: c } } : {}),
      };
      await s.run(feeds, ['Y'], { Y: { dtype: 'F32', shape: [mr, n], data: c } });
      this.calls++;
    }
    this.seconds += (performance.now() - t0) / 1000;
    this.flops += 2 * m * n * k;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
