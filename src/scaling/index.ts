// Precision-aware scaling laws: predict, fit, compute-optimal precision, Pareto frontiers.
// Browser-safe (no node:*): the pipeline reads files and passes text.
export * from './constants.js';
export * from './law.js';
export * from './optimal.js';
export * from './runs.js';
export * from './fit.js';
export * from './pareto.js';
