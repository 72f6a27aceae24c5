// `node:os` in the browser bundle: the page's filesystem keeps temporaries under /tmp.
export const tmpdir = (): string => '/tmp';
export const homedir = (): string => '/home';
export const availableParallelism = (): number => (globalThis.navigator?.hardwareConcurrency ?? 1);
export const cpus = (): unknown[] => Array.from({ length: availableParallelism() }, () => ({ model: 'browser' }));
export const totalmem = (): number => 4 * 2 ** 30;
export const freemem = (): number => 2 * 2 ** 30;
export const platform = (): string => 'browser';
export const EOL = '\n';
export default { tmpdir, homedir, availableParallelism, cpus, totalmem, freemem, platform, EOL };
