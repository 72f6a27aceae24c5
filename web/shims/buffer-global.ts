// The `Buffer` global inside the browser bundle (injected by esbuild).
export { Buffer } from './buffer.js';
