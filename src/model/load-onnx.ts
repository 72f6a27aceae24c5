// ONNX model folders as ModelWeights: the transformers.js layout bitscale exports (config.json,
// tokenizer files, onnx/model{suffix}.onnx [+ _data]), read back so that eval, generate and inspect
// work on them as on any other output. MODEL may be the folder (its default variant: the
// transformers.js_config dtype, else the first of fp32, fp16, q8, q4, q4f16, q2, q2f16 present) or one
// variant's .onnx file inside its onnx/ folder. Initializers are matched by the names the exporter
// gives them: `<name>` (float32), `<name>.f16` (float16 storage), `<name>.qweight/.scales/.zeros`
// (MatMulNBits) and `<name>.codes/.scales/.zeros` (DequantizeLinear); quantized linears are decoded to
// float32 as onnxruntime computes them (formats/onnx/matmulnbits.ts). The q/k row layout is the
// file's `rope_layout` metadata (the graph rotates either layout; config.json says rotate-half).
// Folders written by other exporters (optimum) use other initializer names and are refused by name.

import { basename, dirname, join } from 'node:path';
import { FormatError, IoError } from '../core/errors.js';
import { decodeF16Array } from '../numerics/float16.js';
import { fileExists, openFileSource, readJsonFile } from '../formats/io/index.js';
import { ONNX_DTYPE_SUFFIX, type OnnxDtype } from '../formats/onnx/dtypes.js';
import { dequantBlocked, dequantMatMulNBits } from '../formats/onnx/matmulnbits.js';
import { decodeModel, DATA_LOCATION, type NodeProtoJs, type TensorProtoJs } from '../formats/onnx/proto.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import { configFromHfJson } from './hf-config.js';
import { loadHfTokenizer } from './load-hf.js';
import { canonicalTensors } from './names.js';
import { lazyTensor } from './tensor-source.js';
import type { ModelWeights, TensorSource } from './weights.js';

const ORDER: OnnxDtype[] = ['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'q2', 'q2f16'];

/** A folder with config.json and onnx/*.onnx, or an .onnx file in such a folder's onnx/ directory. */
export async function onnxFolderOf(path: string): Promise<{ dir: string; file: string | null } | null> {
  if (path.endsWith('.onnx')) {
    const dir = dirname(dirname(path));
    return basename(dirname(path)) === 'onnx' && (await fileExists(join(dir, 'config.json'))) ? { dir, file: path } : null;
  }
  if (!(await fileExists(join(path, 'config.json'))) || (await fileExists(join(path, 'model.safetensors'))) || (await fileExists(join(path, 'model.safetensors.index.json')))) return null;
  for (const d of ORDER) if (await fileExists(join(path, 'onnx', `model${ONNX_DTYPE_SUFFIX[d]}.onnx`))) return { dir: path, file: null };
  return null;
}

async function readAll(path: string): Promise<Uint8Array> {
  const src = await openFileSource(path);
  try {
    return await src.read(0, src.size);
  } finally {
    await src.close();
  }
}

export async function loadOnnxFolder(path: string, opts: { tokenizer?: Tokenizer | null } = {}): Promise<ModelWeights> {
  const where = await onnxFolderOf(path);
  if (!where) throw new IoError('missing_file', 'not an ONNX model folder', { file: path, expected: 'config.json and onnx/model*.onnx' });
  const cfgPath = join(where.dir, 'config.json');
  const raw = await readJsonFile<Record<string, unknown>>(cfgPath);
  let file = where.file;
  if (!file) {
    const want = (raw['transformers.js_config'] as { dtype?: string } | undefined)?.dtype;
    const order = want && want in ONNX_DTYPE_SUFFIX ? [want as OnnxDtype, ...ORDER] : ORDER;
    for (const d of order) {
      const f = join(where.dir, 'onnx', `model${ONNX_DTYPE_SUFFIX[d]}.onnx`);
      if (await fileExists(f)) {
        file = f;
        break;
      }
    }
  }
  const model = decodeModel(await readAll(file!));
  const meta = Object.fromEntries((model.metadata_props ?? []).map((p) => [p.key, p.value]));
  const layout = meta.rope_layout === 'interleaved' ? 'interleaved' : 'half';
  const config = { ...configFromHfJson(raw, cfgPath), ropeLayout: layout as 'half' | 'interleaved' };
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const consumer = new Map<string, NodeProtoJs>();
  for (const n of model.graph.node) for (const i of n.input) if (!consumer.has(i)) consumer.set(i, n);
  const external = new Map<string, Uint8Array>();
  const bytesOf = async (t: TensorProtoJs): Promise<Uint8Array> => {
    if (t.data_location !== DATA_LOCATION.EXTERNAL) return t.raw_data ?? new Uint8Array(0);
    const kv = Object.fromEntries((t.external_data ?? []).map((e) => [e.key, e.value]));
    const loc = join(dirname(file!), kv.location);
    let buf = external.get(loc);
    if (!buf) {
      buf = await readAll(loc);
      external.set(loc, buf);
    }
    const off = Number(kv.offset ?? 0);
    return buf.subarray(off, off + Number(kv.length ?? buf.length - off));
  };
  const typed = async <T extends Float32Array | Uint8Array | Int8Array | Uint16Array>(t: TensorProtoJs, C: new (b: ArrayBuffer) => T): Promise<T> => {
    const b = (await bytesOf(t)).slice();
    return new C(b.buffer);
  };
  const attr = (n: NodeProtoJs, name: string) => Number(n.attribute?.find((a) => a.name === name)?.i ?? NaN);

  const decode = async (name: string, shape: number[]): Promise<{ data: Float32Array; stored: number; packing?: string } | null> => {
    const f32 = inits.get(name);
    if (f32) return { data: await typed(f32, Float32Array), stored: (await bytesOf(f32)).length };
    const f16 = inits.get(`${name}.f16`);
    if (f16) return { data: decodeF16Array(await typed(f16, Uint16Array)), stored: (await bytesOf(f16)).length, packing: 'float16' };
    const qw = inits.get(`${name}.qweight`);
    const sc = inits.get(`${name}.scales`);
    if (qw && sc) {
      const node = consumer.get(qw.name)!;
      const a = { N: attr(node, 'N'), K: attr(node, 'K'), bits: attr(node, 'bits'), blockSize: attr(node, 'block_size') };
      const z = inits.get(`${name}.zeros`);
      const zeros = z ? (z.data_type === 1 ? await typed(z, Float32Array) : await typed(z, Uint8Array)) : null;
      const B = await typed(qw, Uint8Array);
      return { data: dequantMatMulNBits(B, await typed(sc, Float32Array), zeros, a, name), stored: B.length + (await bytesOf(sc)).length + (z ? (await bytesOf(z)).length : 0), packing: `MatMulNBits int${a.bits} block ${a.blockSize}` };
    }
    const codes = inits.get(`${name}.codes`);
    if (codes && sc) {
      const node = consumer.get(codes.name)!;
      const [N, K] = shape;
      const G = attr(node, 'block_size') || K;
      const signed = codes.data_type === 3;
      const z = inits.get(`${name}.zeros`);
      const c = signed ? await typed(codes, Int8Array) : await typed(codes, Uint8Array);
      const zs = z ? (signed ? await typed(z, Int8Array) : await typed(z, Uint8Array)) : null;
      return { data: dequantBlocked(c, await typed(sc, Float32Array), zs, N, K, G), stored: c.length + (await bytesOf(sc)).length, packing: `DequantizeLinear ${signed ? 'int8' : 'uint8'} block ${G}` };
    }
    return null;
  };

  const tensors = new Map<string, TensorSource>();
  for (const { name, shape } of canonicalTensors(config)) {
    const d = await decode(name, shape);
    if (!d) throw new FormatError('missing_tensor', 'the ONNX file lacks a weight config.json implies', { file: file!, tensor: name, expected: `an initializer named ${name} (or ${name}.f16 / .qweight / .codes), as bitscale exports`, found: 'absent' });
    if (d.data.length !== shape.reduce((x, y) => x * y, 1)) throw new FormatError('shape_mismatch', 'ONNX weight size does not match config.json', { file: file!, tensor: name, expected: `[${shape.join(', ')}]`, found: d.data.length });
    const bytes = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength);
    const src = lazyTensor(name, shape, 'F32', d.stored, async () => bytes);
    tensors.set(name, d.packing ? { ...src, packing: d.packing } : src);
  }
  const tokenizer = opts.tokenizer !== undefined ? opts.tokenizer : await loadHfTokenizer(join(where.dir, 'tokenizer.json'));
  const metadata: Record<string, unknown> = { 'onnx.file': file, ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`onnx.${k}`, v])) };
  return { config, tokenizer, tensors, source: { format: 'onnx', path: file! }, metadata, close: async () => {} };
}
