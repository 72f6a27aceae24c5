// Builds the browser app into dist/web with esbuild: the page (web/app.ts), the job worker
// (web/worker.ts, which runs bitscale's pipeline unchanged over the node:* shims in web/shims/),
// onnxruntime-web's WASM files, and the static files. `node web/build.mjs [--out DIR]`; run by
// `npm run build` and, when the folder is missing, by `bitscale web`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, renameSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const WEB = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(WEB, '..');
const require = createRequire(import.meta.url);

const SHIMS = join(WEB, 'shims');
const alias = {
  'node:fs': join(SHIMS, 'fs.ts'),
  fs: join(SHIMS, 'fs.ts'),
  'node:fs/promises': join(SHIMS, 'fs-promises.ts'),
  'node:path': join(SHIMS, 'path.ts'),
  path: join(SHIMS, 'path.ts'),
  'node:os': join(SHIMS, 'os.ts'),
  'node:crypto': join(SHIMS, 'crypto.ts'),
  'node:buffer': join(SHIMS, 'buffer.ts'),
  'node:url': join(SHIMS, 'misc.ts'),
  'node:module': join(SHIMS, 'misc.ts'),
  'node:worker_threads': join(SHIMS, 'misc.ts'),
  'node:stream': join(SHIMS, 'misc.ts'),
  'node:stream/promises': join(SHIMS, 'misc.ts'),
  'node:stream/web': join(SHIMS, 'misc.ts'),
  'node:child_process': join(SHIMS, 'misc.ts'),
  'onnxruntime-node': join(SHIMS, 'ort.ts'),
};

/** onnxruntime-web's WASM runtime files the page loads (served from the app's own origin). */
export const ORT_FILES = ['ort-wasm-simd-threaded.jsep.wasm', 'ort-wasm-simd-threaded.jsep.mjs'];

export async function buildWeb(out = join(ROOT, 'dist', 'web'), { minify = true } = {}) {
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'ort'), { recursive: true });
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    alias,
    inject: [join(SHIMS, 'process.ts'), join(SHIMS, 'buffer-global.ts')],
    // never reached in the page (the llama.cpp check and the Hub download are Node-only options)
    external: ['node-llama-cpp', '@huggingface/hub', 'koffi'],
    define: { 'process.env.NODE_ENV': '"production"' },
  };
  await build({ ...common, entryPoints: { app: join(WEB, 'app.ts') }, outdir: tmp });
  await build({ ...common, entryPoints: { worker: join(WEB, 'worker.ts') }, outdir: tmp });
  // the ggml kernel workers the job worker starts for the streaming RTN path (#12's browser pool)
  await build({ ...common, entryPoints: { kernels: join(ROOT, 'src', 'quant', 'ggml', 'wasm', 'web-worker.ts') }, outdir: tmp });
  const ortDir = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm'));
  for (const f of ORT_FILES) copyFileSync(join(ortDir, f), join(tmp, 'ort', f));
  for (const f of readdirSync(WEB)) if (/\.(html|css|svg|png)$/.test(f)) copyFileSync(join(WEB, f), join(tmp, f));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(tmp, out);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = await buildWeb(i > 0 ? resolve(process.argv[i + 1]) : undefined, { minify: !process.argv.includes('--no-minify') });
  console.log(`web app built in ${out}${existsSync(out) ? '' : ' (missing!)'}`);
}
