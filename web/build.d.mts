// Types of web/build.mjs (a plain Node script, so it runs without a TypeScript loader in `npm run build`).
export declare const ORT_FILES: string[];
export declare function buildWeb(out?: string, opts?: { minify?: boolean }): Promise<string>;
