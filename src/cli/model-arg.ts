// MODEL arguments: a local path, or a Hugging Face Hub id (`org/name`, `org/name@revision`) that is
// downloaded into the Hugging Face cache first (pipeline/hub.ts) and then used as a local folder.
// The Hub settings come from the environment here, as huggingface_hub reads them: HF_ENDPOINT,
// HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, HF_HUB_OFFLINE.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { fetchHubModel, hubCacheDir, parseHubId } from '../pipeline/hub.js';
import { abortSignal } from './args.js';
import { err, progressPrinter } from './output.js';

const truthy = (v: string | undefined) => !!v && /^(1|on|yes|true)$/i.test(v.trim());

/** The local path for a MODEL argument (unchanged when it exists locally or is no Hub id). */
export async function modelArg(arg: string, opts: { quiet?: boolean } = {}): Promise<string> {
  if (existsSync(arg) || !parseHubId(arg)) return arg;
  const env = process.env;
  const r = await fetchHubModel(arg, {
    endpoint: env.HF_ENDPOINT?.replace(/\/+$/, '') || undefined,
    token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined,
    cacheDir: hubCacheDir(env, homedir()),
    offline: truthy(env.HF_HUB_OFFLINE),
    onProgress: progressPrinter({ quiet: opts.quiet }),
    signal: abortSignal(),
    log: opts.quiet ? undefined : (line) => err(line),
  });
  if (!opts.quiet) err(`${r.id}@${r.revision} → ${r.path}`);
  return r.path;
}
