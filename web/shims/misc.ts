// The rest of node:* that modules below the CLI import but the page's jobs never call (the Hub
// download, worker-thread pools, the training corpus lookup): importable, and a clear error if
// reached. Aliased per module name in web/build.mjs.
function unavailable(what: string): never {
  throw new Error(`${what} is not available in the browser build`);
}

// node:url
export const fileURLToPath = (u: string | URL): string => new URL(String(u)).pathname;
export const pathToFileURL = (p: string): URL => new URL(`file://${p}`);

// node:module
export const createRequire = (): ((id: string) => never) => (id: string) => unavailable(`require('${id}')`);

// node:worker_threads (the page's parallelism is Web Workers, web/worker.ts)
export const isMainThread = true;
export const parentPort = null;
export const workerData = null;
export class Worker {
  constructor() {
    unavailable('worker_threads');
  }
}

// node:stream, node:stream/promises, node:stream/web
export class Readable {
  static fromWeb(): never {
    return unavailable('Readable.fromWeb');
  }
}
export const pipeline = (): never => unavailable('stream.pipeline');
export const ReadableStream = globalThis.ReadableStream;

// node:child_process, node:net, node:http: never reached below the CLI
export const spawn = (): never => unavailable('child processes');

export default { fileURLToPath, pathToFileURL, createRequire, isMainThread, parentPort, workerData, Worker, Readable, pipeline, spawn };
