// `node:buffer` in the browser bundle: the little of Buffer that bitscale's modules use (allocation,
// concat, from, hex/utf8/base64 text), as a Uint8Array subclass.

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class Buffer extends Uint8Array {
  static alloc(n: number): Buffer {
    return new Buffer(n);
  }
  static allocUnsafe(n: number): Buffer {
    return new Buffer(n);
  }
  static allocUnsafeSlow(n: number): Buffer {
    return new Buffer(n);
  }
  static isBuffer(x: unknown): x is Buffer {
    return x instanceof Buffer;
  }
  static byteLength(s: string | ArrayBufferView): number {
    return typeof s === 'string' ? new TextEncoder().encode(s).length : s.byteLength;
  }
  static override from(x: unknown, enc?: unknown, len?: unknown): Buffer {
    if (typeof x === 'string') {
      if (enc === 'hex') return new Buffer((x.match(/../g) ?? []).map((h) => parseInt(h, 16)));
      if (enc === 'base64') return new Buffer([...atob(x)].map((c) => c.charCodeAt(0)));
      const b = new TextEncoder().encode(x);
      return new Buffer(b.buffer, b.byteOffset, b.length);
    }
    if (x instanceof ArrayBuffer) return new Buffer(x, (enc as number) ?? 0, len as number | undefined);
    if (ArrayBuffer.isView(x)) {
      const out = new Buffer(x.byteLength);
      out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
      return out;
    }
    return new Buffer(x as ArrayLike<number>);
  }
  static concat(list: readonly Uint8Array[], total?: number): Buffer {
    const n = total ?? list.reduce((a, b) => a + b.length, 0);
    const out = new Buffer(n);
    let o = 0;
    for (const b of list) {
      out.set(b.subarray(0, Math.min(b.length, n - o)), o);
      o += b.length;
      if (o >= n) break;
    }
    return out;
  }
  override toString(enc: string = 'utf8'): string {
    if (enc === 'hex') {
      let s = '';
      for (let i = 0; i < this.length; i++) s += HEX[this[i]];
      return s;
    }
    if (enc === 'base64') {
      let s = '';
      for (let i = 0; i < this.length; i++) s += String.fromCharCode(this[i]);
      return btoa(s);
    }
    return new TextDecoder().decode(this);
  }
  equals(o: Uint8Array): boolean {
    return this.length === o.length && this.every((v, i) => v === o[i]);
  }
}

export const constants = { MAX_LENGTH: 2 ** 31 - 1, MAX_STRING_LENGTH: 2 ** 29 - 24 };
export const kMaxLength = constants.MAX_LENGTH;
export default { Buffer, constants, kMaxLength };
