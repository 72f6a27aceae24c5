// `bitscale web`: serves the browser app on localhost and prints its URL; the work is pipeline/web-serve.ts.
import type { CommandMeta } from '../command.js';
import { parse, abortSignal } from '../args.js';
import { out, reportError } from '../output.js';
import { serveWebApp, webAppDir } from '../../pipeline/web-serve.js';
import { ConfigError } from '../../core/errors.js';

export const meta: CommandMeta = {
  name: 'web',
  summary: 'serve the browser app (open, quantize, measure, download a model in the page) on localhost',
  usage: `bitscale web [--port N] [--host 127.0.0.1] [--rebuild]

  --port N      port on this machine (default 8018; 0 picks a free one)
  --host H      127.0.0.1 (default), localhost or ::1: the app is never served to other machines
  --rebuild     rebuild the app from web/ first (a source checkout)
  Prints the URL and serves until Ctrl-C. The app computes in the browser tab; the server only
  sends its static files (dist/web, which any static host can serve as well).`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(argv, { port: { type: 'string' }, host: { type: 'string' }, rebuild: { type: 'boolean' } }, meta.usage);
    const port = p.values.port === undefined ? 8018 : Number(p.values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('bad_option', 'invalid port', { field: '--port', expected: '0–65535', found: p.values.port });
    const dir = await webAppDir({ rebuild: !!p.values.rebuild });
    const s = await serveWebApp(dir, port, (p.values.host as string | undefined) ?? '127.0.0.1');
    out(`bitscale web: ${s.url}`);
    out(`serving ${dir} (Ctrl-C to stop)`);
    const signal = abortSignal();
    await new Promise<void>((resolve) => {
      if (!signal) return;
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await s.close();
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
