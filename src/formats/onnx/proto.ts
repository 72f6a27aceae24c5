// The subset of onnx.proto (ONNX 1.17+, IR version 10–13) bitscale reads and writes, parsed at
// load time by protobufjs. Field numbers are those of onnx/onnx.proto; messages and fields we never
// use are left out (protobuf skips unknown fields when decoding).
//
// Data type ids (TensorProto.DataType): FLOAT 1, UINT8 2, INT8 3, UINT16 4, INT16 5, INT32 6,
// INT64 7, STRING 8, BOOL 9, FLOAT16 10, DOUBLE 11, UINT32 12, UINT64 13, BFLOAT16 16,
// FLOAT8E4M3FN 17, FLOAT8E5M2 19, UINT4 21, INT4 22.

import protobuf from 'protobufjs';
import { DTYPES, type DType } from '../../core/dtype.js';
import { ConfigError } from '../../core/errors.js';

const ONNX_PROTO = `
syntax = "proto3";
package onnx;

message StringStringEntryProto { string key = 1; string value = 2; }

message OperatorSetIdProto { string domain = 1; int64 version = 2; }

message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  string doc_string = 12;
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}

message TensorShapeProto {
  message Dimension {
    oneof value { int64 dim_value = 1; string dim_param = 2; }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
  string denotation = 6;
}

message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }

message AttributeProto {
  string name = 1;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  string doc_string = 13;
  int32 type = 20;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  string domain = 7;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

/** AttributeProto.AttributeType */
export const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** TensorProto.DataLocation */
export const DATA_LOCATION = { DEFAULT: 0, EXTERNAL: 1 } as const;

/** TensorProto.DataType ids for the 4-bit types (the other ids live in core's DTYPES table). */
export const ONNX_UINT4 = 21;
export const ONNX_INT4 = 22;

/** The TensorProto.DataType id of a core dtype or a packed 4-bit type: the one place ONNX type ids are chosen. */
export function onnxDataType(d: DType | 'I4' | 'U4'): number {
  if (d === 'I4') return ONNX_INT4;
  if (d === 'U4') return ONNX_UINT4;
  const id = DTYPES[d].onnx;
  if (id === null) throw new ConfigError('unsupported', 'dtype has no ONNX equivalent', { expected: 'an ONNX tensor type', found: d });
  return id;
}

let root: protobuf.Root | null = null;
function onnxRoot(): protobuf.Root {
  root ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  return root;
}

// Plain-object shapes of the messages (keepCase: field names as in onnx.proto).
export interface TensorProtoJs {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  external_data?: { key: string; value: string }[];
  data_location?: number;
  float_data?: number[];
  int64_data?: (number | bigint)[];
  int32_data?: number[];
}
export interface AttributeProtoJs {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProtoJs;
  floats?: number[];
  ints?: number[];
}
export interface NodeProtoJs {
  input: string[];
  output: string[];
  name?: string;
  op_type: string;
  domain?: string;
  attribute?: AttributeProtoJs[];
}
export interface ValueInfoProtoJs {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}
export interface GraphProtoJs {
  name: string;
  node: NodeProtoJs[];
  initializer: TensorProtoJs[];
  input: ValueInfoProtoJs[];
  output: ValueInfoProtoJs[];
  value_info?: ValueInfoProtoJs[];
}
export interface ModelProtoJs {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  model_version?: number;
  doc_string?: string;
  graph: GraphProtoJs;
  opset_import: { domain: string; version: number }[];
  metadata_props?: { key: string; value: string }[];
}

/** Encodes a ModelProto given as a plain object. */
export function encodeModel(m: ModelProtoJs): Uint8Array {
  const T = onnxRoot().lookupType('onnx.ModelProto');
  const err = T.verify(m);
  if (err) throw new Error(`internal: invalid ModelProto: ${err}`);
  return T.encode(T.fromObject(m)).finish();
}

/** Decodes ModelProto bytes into a plain object (int64 fields as numbers, bytes as Uint8Array). */
export function decodeModel(bytes: Uint8Array): ModelProtoJs {
  const T = onnxRoot().lookupType('onnx.ModelProto');
  const msg = T.decode(bytes);
  return T.toObject(msg, { longs: Number, defaults: true, arrays: true }) as unknown as ModelProtoJs;
}
