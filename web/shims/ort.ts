// What `onnxruntime-node` means inside the browser bundle: onnxruntime-web (the same 1.30 release,
// WASM CPU kernels; WebGPU when the page asks for it and the browser has it). The engine's one
// runtime file (src/engine/session.ts) is unchanged: models it opens from bytes go straight to
// onnxruntime-web; models it opens from a path (large graphs whose constants it writes as ONNX
// external data into a temporary folder) are read back from the page's filesystem and their
// external data is handed over as `externalData`, which is how onnxruntime-web takes it.
import * as web from 'onnxruntime-web';
import * as v from './vfs.js';
import { dirname, basename } from './path.js';

export const Tensor = web.Tensor;
export const env = web.env;
/** onnxruntime-web ignores preallocated CPU outputs (the engine then copies results; src/engine/session.ts) */
export const preallocatedOutputs = false;

/** Execution providers for every session the engine opens (set by the worker from the page's choice). */
export const providers: { list: string[] } = { list: ['wasm'] };

type Options = web.InferenceSession.SessionOptions;

function adapt(o: Options | undefined): Options {
  const out: Options = { ...(o ?? {}), executionProviders: providers.list as never };
  // intra-op threads come from env.wasm.numThreads in the browser
  delete (out as { intraOpNumThreads?: number }).intraOpNumThreads;
  return out;
}

export const InferenceSession = {
  async create(model: string | Uint8Array, o?: Options): Promise<web.InferenceSession> {
    if (typeof model !== 'string') return web.InferenceSession.create(model, adapt(o));
    const bytes = v.readFileNodeSync(model);
    const dir = dirname(model);
    const externalData = v
      .listDir(dir)
      .filter((n) => n !== basename(model))
      .map((n) => ({ path: n, data: v.readFileNodeSync(`${dir}/${n}`) }));
    return web.InferenceSession.create(bytes, { ...adapt(o), externalData });
  },
};

export default { Tensor, env, InferenceSession, preallocatedOutputs };
