export * from './errors.js';
export * from './dtype.js';
export * from './tensor.js';
export * from './rng.js';
export * from './progress.js';
export * from './ftype.js';
