// GGUF metadata values, kept typed so that read(write(x)) is exact: a u32 stays a u32, a u64 is
// a bigint, a nested array keeps its item types.

/** gguf_type ids as stored in the file. */
export const GGUF_VALUE_TYPE_IDS = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufValueType = keyof typeof GGUF_VALUE_TYPE_IDS;
export type GgufNumberType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigIntType = 'u64' | 'i64';

const BY_ID = new Map<number, GgufValueType>(Object.entries(GGUF_VALUE_TYPE_IDS).map(([k, v]) => [v, k as GgufValueType]));

export function ggufValueTypeFromId(id: number): GgufValueType | undefined {
  return BY_ID.get(id);
}

/** Fixed byte sizes of scalar types (strings and arrays are variable). */
export const GGUF_SCALAR_BYTES: Record<Exclude<GgufValueType, 'string' | 'array'>, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** Whether typed arrays on this host read and write little-endian (GGUF's order), as on x86 and ARM. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The typed array of each scalar type (bool as its byte), for whole arrays of items at once. */
export const GGUF_SCALAR_ARRAYS: Record<Exclude<GgufValueType, 'string' | 'array'>, { new (b: ArrayBuffer): ArrayLike<number | bigint>; new (n: number): ArrayLike<number | bigint> }> = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
  bool: Uint8Array,
};

export type GgufArray =
  | { type: 'array'; itemType: GgufNumberType; value: number[] }
  | { type: 'array'; itemType: GgufBigIntType; value: bigint[] }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: 'array'; value: GgufArray[] };

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArray;

/** The JS type of one array item of GGUF type T. */
export type GgufItem<T extends GgufValueType> = T extends GgufNumberType
  ? number
  : T extends GgufBigIntType
    ? bigint
    : T extends 'bool'
      ? boolean
      : T extends 'string'
        ? string
        : GgufArray;

/** Ordered metadata (GGUF keeps key order; writers reproduce it). */
export type GgufMetadata = Map<string, GgufValue>;

/** Constructors for typed values: `gv.u32(5)`, `gv.arr('string', ['a'])`. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: bigint | number): GgufValue => ({ type: 'u64', value: BigInt(value) }),
  i64: (value: bigint | number): GgufValue => ({ type: 'i64', value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  arr: <T extends GgufValueType>(itemType: T, value: GgufItem<T>[]): GgufArray => ({ type: 'array', itemType, value }) as GgufArray,
};

/**
 * The plain JS value of a metadata entry (numbers, bigint for 64-bit ints, strings, booleans,
 * nested arrays), or undefined if the key is absent.
 */
export function ggufPlain(v: GgufValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.type !== 'array') return v.value;
  if (v.itemType === 'array') return v.value.map((a) => ggufPlain(a));
  return v.value;
}
