// Worker entry: Node 20 resolves a worker's entry file before `--import` hooks apply, so register
// tsx here and then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./quant-worker.ts');
