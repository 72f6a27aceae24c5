/**
 * GGUF v2/v3: pure reader/writer over ByteSource/ByteSink (browser-safe). File paths: see
 * `formats/io` (`openGgufFile`, `writeGgufFile`). Byte layout: reader.ts header comment.
 *
 * Metadata values are typed (`GgufValue`): {type:'u8'|'i8'|'u16'|'i16'|'u32'|'i32'|'f32'|'f64', value:number},
 * {type:'u64'|'i64', value:bigint}, {type:'bool', value:boolean}, {type:'string', value:string},
 * {type:'array', itemType, value:[…]} (itemType 'array' nests GgufArray values). Build with `gv.u32(5)`,
 * `gv.str('llama')`, `gv.arr('string', tokens)`; read plain values with `file.get(key)` / `ggufPlain(v)`.
 * Metadata is an ordered `Map<string, GgufValue>`; writers keep its order. Key names: `keys.ts`
 * (GENERAL, LLM + archKey(arch, suffix), TOKENIZER, TOKEN_TYPE).
 *
 * Read: `readGguf(src)` → GgufFile {version, metadata, alignment, dataStart, tensors: GgufTensorInfo[]
 * (file order; {name, type: GgmlType, ne (ggml order), shape (row-major = ne reversed), offset (relative),
 * absoluteOffset, byteLength, numel}), get(key), has(n), info(n), readBytes(n), readTensor(n) → core Tensor
 * for F32/F16/BF16/F64/I8/I16/I32/I64, QuantTensor {type, shape, bytes} for block types, close()}.
 * Errors: FormatError bad_magic | bad_version | truncated | too_large | bad_string | bad_header |
 * duplicate_name | dtype_unknown | shape_mismatch | misaligned | out_of_bounds | overlap | missing_tensor.
 *
 * Write: `writeGguf(sink, metadata, tensors, {alignment?, version?, signal?, onProgress?})` with tensors
 * {name, type: GgmlType, shape (row-major), data? | produce?} in the order given; the data of each is
 * padded to the alignment; `general.alignment` is added when the alignment is not 32.
 * `encodeGguf(...)` → Uint8Array; `ggufLayout(...)` computes header and offsets only.
 */
export * from './types.js';
export * from './keys.js';
export * from './reader.js';
export * from './writer.js';
