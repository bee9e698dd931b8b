// Our own reader and writer of the safetensors format, bounded and validated: the header of a file never makes us
// allocate more than the file really holds, and every claim in it is checked before anyone uses it.
//
// The format: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (the header), then the data section. The header
// maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section),
// and may hold "__metadata__": {string: string}.
import { open, type FileHandle } from 'node:fs/promises';

import { MultiloraError } from '../core/errors';
import { describe, invalid, isPlainObject, string } from '../core/validate';

/**
 * The element types multilora reads from a LoRA file: those OpenVINO GenAI 2026.3 reads (adapter.cpp,
 * safetensors_to_ov_element_type), and the integers that an `.alpha` may be written in (diffusers'
 * convert_state_dict_to_kohya writes int64), which GenAI refuses and multilora rewrites as float32.
 */
export type Dtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

/** The float element types: every tensor's, but a one-element `.alpha`. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** One tensor as the header describes it, after validation. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte range in the data section, as the header gives it. */
  begin: number;
  end: number;
  /** end - begin, which equals the element count times the dtype size. */
  byteLength: number;
  /** Where the bytes start in the whole file: the data section's offset + begin. */
  offset: number;
}

export interface SafetensorsHeader {
  /** N, the length of the JSON header in bytes. */
  headerLength: number;
  /** 8 + N: where the data section starts. */
  dataOffset: number;
  /** The size of the whole file. */
  fileSize: number;
  /** "__metadata__", or {} when the file has none. */
  metadata: Record<string, string>;
  /** Every tensor, in the order of their data. */
  tensors: TensorInfo[];
}

/** A tensor to write. */
export interface TensorData {
  name: string;
  dtype: FloatDtype;
  shape: readonly number[];
  data: Uint8Array;
}

/** The longest header we read: a LoRA's header is kilobytes; a bigger claim is a broken or hostile file. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_SIZES: Readonly<Record<Dtype, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };
const FLOAT_SIZES: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Whether a tensor holds floats (every tensor GenAI reads does), not an integer alpha. */
export function isFloat(dtype: Dtype): dtype is FloatDtype {
  return Object.hasOwn(FLOAT_SIZES, dtype);
}

/** Other dtypes of the format, which are valid safetensors but which GenAI 2026.3 rejects. */
const UNSUPPORTED_DTYPES = new Set([
  'BOOL',
  'U8',
  'I8',
  'U16',
  'I16',
  'U32',
  'I32',
  'U64',
  'I64',
  'F64',
  'C64',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
]);

const GENAI_DTYPES = 'OpenVINO GenAI 2026.3 reads only F32, F16 and BF16; an alpha of one element may be I64 or I32';
const BUFFER_SOURCE = 'in-memory safetensors file';

function where(source: string | undefined): string {
  return source === undefined ? `The ${BUFFER_SOURCE}` : `Safetensors file ${source}`;
}

function corrupt(source: string | undefined, problem: string): MultiloraError {
  return new MultiloraError('ERR_ADAPTER_INVALID', `${where(source)} is invalid: ${problem}`);
}

/** A name for a message: JSON, cut at 200 characters. */
export function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 197)}...` : name);
}

/** Short JSON of a header value for a message. */
function shown(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) return describe(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The element count of a shape, or undefined when it exceeds `limit` (the product is never built past it). */
function elementCount(shape: readonly number[], limit: bigint): bigint | undefined {
  if (shape.includes(0)) return 0n;
  let count = 1n;
  for (const dim of shape) {
    count *= BigInt(dim);
    if (count > limit) return undefined;
  }
  return count;
}

function isDim(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the header

/**
 * The keys of the top-level object of `text`, in order, duplicates included. JSON.parse keeps only the last of a
 * repeated key, so this walks the text itself. `text` must already have parsed as a JSON object.
 */
export function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let i = skipSpace(text, 0) + 1; // past '{'
  i = skipSpace(text, i);
  if (text[i] === '}') return keys;
  for (;;) {
    i = skipSpace(text, i);
    const end = stringEnd(text, i);
    keys.push(JSON.parse(text.slice(i, end)) as string);
    i = skipSpace(text, end) + 1; // past ':'
    i = skipSpace(text, valueEnd(text, skipSpace(text, i)));
    if (text[i] !== ',') return keys;
    i += 1;
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i += 1;
  return i;
}

/** `text[i]` is a '"': the index just past the closing '"'. */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c === 0x5c) j += 2;
    else if (c === 0x22) return j + 1;
    else j += 1;
  }
}

/** The index just past the JSON value that starts at `i`; iterative, so deep nesting cannot overflow the stack. */
function valueEnd(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    let j = i;
    for (;;) {
      const d = text[j];
      if (d === '"') {
        j = stringEnd(text, j);
        continue;
      }
      if (d === '{' || d === '[') depth += 1;
      else if (d === '}' || d === ']') {
        depth -= 1;
        if (depth === 0) return j + 1;
      }
      j += 1;
    }
  }
  let j = i;
  while (j < text.length && !',}] \t\n\r'.includes(text[j])) j += 1;
  return j;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Checks the claimed header length against the file before anything is allocated for it. */
function checkHeaderLength(claimed: bigint, fileSize: number, source: string | undefined): number {
  if (claimed === 0n) return fail(source, 'its header length is 0; a safetensors file has a JSON header');
  const available = fileSize - 8;
  if (claimed > BigInt(available)) {
    return fail(source, `its header length is ${claimed} bytes, but only ${available} bytes follow the 8-byte length`);
  }
  if (claimed > BigInt(MAX_HEADER_BYTES)) {
    return fail(source, `its header length is ${claimed} bytes, above multilora's limit of ${MAX_HEADER_BYTES} bytes`);
  }
  return Number(claimed);
}

function fail(source: string | undefined, problem: string): never {
  throw corrupt(source, problem);
}

/** Parses and validates the header bytes (everything between the length and the data section). */
function parseHeader(bytes: Uint8Array, fileSize: number, source: string | undefined): SafetensorsHeader {
  const headerLength = bytes.length;
  const dataOffset = 8 + headerLength;
  const dataSize = fileSize - dataOffset;
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return fail(source, `its ${headerLength}-byte header is not valid UTF-8`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(source, `its header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) return fail(source, `its header is ${describe(parsed)}, not a JSON object`);

  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) {
      return fail(source, `its header names ${quote(key)} twice (JSON readers would silently keep only the last one)`);
    }
    seen.add(key);
  }

  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') metadata = checkMetadata(entry, source);
    else tensors.push(checkTensor(name, entry, dataOffset, dataSize, source));
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let last: TensorInfo | undefined;
  for (const tensor of tensors) {
    if (tensor.byteLength === 0) continue;
    if (last && tensor.begin < last.end) {
      return fail(
        source,
        `the data of tensors ${quote(last.name)} [${last.begin}, ${last.end}) and ${quote(tensor.name)} ` +
          `[${tensor.begin}, ${tensor.end}) overlap`,
      );
    }
    if (!last || tensor.end > last.end) last = tensor;
  }
  return { headerLength, dataOffset, fileSize, metadata, tensors };
}

function checkMetadata(entry: unknown, source: string | undefined): Record<string, string> {
  if (!isPlainObject(entry)) {
    return fail(source, `its "__metadata__" is ${describe(entry)}, not an object of strings`);
  }
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') {
      return fail(source, `its "__metadata__" must map strings to strings, but ${quote(key)} maps to ${shown(value)}`);
    }
  }
  return Object.fromEntries(Object.entries(entry as Record<string, string>));
}

function checkTensor(
  name: string,
  entry: unknown,
  dataOffset: number,
  dataSize: number,
  source: string | undefined,
): TensorInfo {
  const t = `tensor ${quote(name)}`;
  if (!isPlainObject(entry)) return fail(source, `the entry of ${t} is ${describe(entry)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') return fail(source, `${t} has no dtype string (dtype: ${shown(dtype)})`);
  const alpha = /(?:^|\.)alpha$/.test(name) && Array.isArray(shape) && shape.every((d) => d === 1);
  if (!Object.hasOwn(FLOAT_SIZES, dtype) && !(alpha && Object.hasOwn(DTYPE_SIZES, dtype))) {
    return fail(
      source,
      UNSUPPORTED_DTYPES.has(dtype)
        ? `${t} has dtype ${quote(dtype)}, which LoRA files for GenAI cannot use (${GENAI_DTYPES})`
        : `${t} has the unknown dtype ${quote(dtype)} (${GENAI_DTYPES})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isDim)) {
    return fail(source, `${t} has shape ${shown(shape)}, not an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isDim)) {
    return fail(source, `${t} has data_offsets ${shown(offsets)}, not two non-negative integers [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) return fail(source, `${t} has data_offsets [${begin}, ${end}], whose begin is after its end`);
  if (end > dataSize) {
    return fail(source, `${t} ends at byte ${end} of the data section, which holds only ${dataSize} bytes`);
  }
  const size = DTYPE_SIZES[dtype as Dtype];
  const count = elementCount(shape, BigInt(dataSize));
  const byteLength = end - begin;
  if (count === undefined || count * BigInt(size) !== BigInt(byteLength)) {
    const need =
      count === undefined ? `more than the ${dataSize} bytes of the data section` : `${count * BigInt(size)}`;
    return fail(source, `${t} holds ${byteLength} bytes, but dtype ${dtype} and shape ${shown(shape)} need ${need}`);
  }
  return { name, dtype: dtype as Dtype, shape: [...shape], begin, end, byteLength, offset: dataOffset + begin };
}

/** Reads exactly `buffer.length` bytes at `position`. */
async function readExactly(handle: FileHandle, buffer: Buffer, position: number, source: string): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) fail(source, `it ended at byte ${position + done} while being read (did it change?)`);
    done += bytesRead;
  }
}

async function openFile(file: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new MultiloraError(
      e.code === 'ENOENT' ? 'ERR_ADAPTER_NOT_FOUND' : 'ERR_ADAPTER_INVALID',
      `Cannot open the safetensors file ${file}: ${e.message}`,
      { cause: err },
    );
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) fail(file, 'it is not a regular file');
    return { handle, size: stat.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function readHeaderFrom(handle: FileHandle, fileSize: number, file: string): Promise<SafetensorsHeader> {
  if (fileSize < 8) fail(file, `it is ${fileSize} bytes long, shorter than the 8-byte header length`);
  const prefix = Buffer.alloc(8);
  await readExactly(handle, prefix, 0, file);
  const headerLength = checkHeaderLength(prefix.readBigUInt64LE(0), fileSize, file);
  const bytes = Buffer.alloc(headerLength);
  await readExactly(handle, bytes, 8, file);
  return parseHeader(bytes, fileSize, file);
}

/**
 * Reads and validates the header of a .safetensors file: the first 8 bytes, then the header alone, never the data.
 * Rejects with ERR_ADAPTER_NOT_FOUND when there is no file, ERR_ADAPTER_INVALID when it is not a valid one.
 */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  string(file, 'file', { nonEmpty: true });
  const { handle, size } = await openFile(file);
  try {
    return await readHeaderFrom(handle, size, file);
  } finally {
    await handle.close();
  }
}

function checkBuffer(buffer: unknown, name: string): Buffer {
  if (Buffer.isBuffer(buffer)) return buffer;
  if (buffer instanceof Uint8Array) return Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  throw invalid('a Buffer', name, buffer);
}

/** Validates a whole safetensors file held in memory (such as the `data` source of an adapter) and returns its header. */
export function parseSafetensors(buffer: Uint8Array): SafetensorsHeader {
  const bytes = checkBuffer(buffer, 'buffer');
  if (bytes.length < 8) fail(undefined, `it is ${bytes.length} bytes long, shorter than the 8-byte header length`);
  const headerLength = checkHeaderLength(bytes.readBigUInt64LE(0), bytes.length, undefined);
  return parseHeader(bytes.subarray(8, 8 + headerLength), bytes.length, undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading tensors

/** The outline of a TensorInfo: checkInfo's test. */
function isInfo(info: unknown): info is TensorInfo {
  return (
    isPlainObject(info) &&
    typeof info.name === 'string' &&
    typeof info.dtype === 'string' &&
    Object.hasOwn(DTYPE_SIZES, info.dtype) &&
    isDim(info.offset) &&
    isDim(info.byteLength) &&
    Array.isArray(info.shape)
  );
}

function checkInfo(info: unknown): TensorInfo {
  if (!isInfo(info)) throw invalid('a TensorInfo from readSafetensorsHeader or parseSafetensors', 'info', info);
  return info;
}

/** An open safetensors source: its validated header, and its tensors read one by one. */
export interface SafetensorsReader {
  readonly header: SafetensorsHeader;
  /** The bytes of one tensor of this file. For a Buffer source they share its memory. */
  read: (info: TensorInfo) => Promise<Buffer>;
  close: () => Promise<void>;
}

/** Opens a .safetensors file (kept open until close()) or wraps an in-memory one, validating its header. */
export async function openSafetensors(source: string | Uint8Array): Promise<SafetensorsReader> {
  if (typeof source !== 'string') {
    const bytes = checkBuffer(source, 'source');
    const header = parseSafetensors(bytes);
    return { header, read: async (info) => sliceTensor(bytes, info), close: async () => {} };
  }
  string(source, 'source', { nonEmpty: true });
  const { handle, size } = await openFile(source);
  let header: SafetensorsHeader;
  try {
    header = await readHeaderFrom(handle, size, source);
  } catch (err) {
    await handle.close();
    throw err;
  }
  let closed = false;
  return {
    header,
    read: async (info) => {
      if (closed) throw new MultiloraError('ERR_INVALID_ARGUMENT', `The safetensors reader of ${source} was closed`);
      return readFromFile(handle, checkInfo(info), size, source);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

function sliceTensor(bytes: Buffer, info: TensorInfo): Buffer {
  const { offset, byteLength, name } = checkInfo(info);
  if (offset + byteLength > bytes.length) {
    fail(undefined, `tensor ${quote(name)} would end at byte ${offset + byteLength}, past its ${bytes.length} bytes`);
  }
  return bytes.subarray(offset, offset + byteLength);
}

async function readFromFile(handle: FileHandle, info: TensorInfo, size: number, file: string): Promise<Buffer> {
  if (info.offset + info.byteLength > size) {
    fail(file, `tensor ${quote(info.name)} would end at byte ${info.offset + info.byteLength}, past its ${size} bytes`);
  }
  const out = Buffer.alloc(info.byteLength);
  await readExactly(handle, out, info.offset, file);
  return out;
}

/**
 * The bytes of one tensor, described by a TensorInfo of this very file (from readSafetensorsHeader or
 * parseSafetensors). From a Buffer, the result shares its memory; from a path, only those bytes are read.
 */
export async function readTensor(source: string | Uint8Array, info: TensorInfo): Promise<Buffer> {
  checkInfo(info);
  if (typeof source !== 'string') return sliceTensor(checkBuffer(source, 'source'), info);
  string(source, 'source', { nonEmpty: true });
  const { handle, size } = await openFile(source);
  try {
    return await readFromFile(handle, info, size, source);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Half-precision numbers

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 with these bits (an integer 0..0xffff), as a number. Exact. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** The bits of the float16 nearest to `value` (first rounded to float32), ties to even; overflow gives ±Infinity. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const e = exponent - 112; // re-biased for float16 (127 - 15)
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A float16 subnormal (or zero): the value in units of 2^-24 is (mantissa with its implicit bit) >> (14 - e).
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    if (rest > tie || (rest === tie && half & 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // a carry into the exponent is right, up to Infinity
  return sign | half;
}

/** The bfloat16 with these bits, as a number. Exact. */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** The bits of the bfloat16 nearest to `value` (first rounded to float32), ties to even. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays a NaN
  const lsb = (x >>> 16) & 1;
  return Math.floor((x + 0x7fff + lsb) / 0x10000) & 0xffff;
}

/** The values of a tensor's bytes as float32 (an integer's rounded to the nearest float32). */
export function toFloat32Array(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const size = DTYPE_SIZES[dtype];
  if (bytes.length % size !== 0) throw invalid(`a whole number of ${dtype} elements`, 'bytes', bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / size);
  for (let i = 0; i < out.length; i += 1) {
    out[i] =
      dtype === 'F32'
        ? view.getFloat32(i * 4, true)
        : dtype === 'F16'
          ? f16ToF32(view.getUint16(i * 2, true))
          : dtype === 'BF16'
            ? bf16ToF32(view.getUint16(i * 2, true))
            : dtype === 'I64'
              ? Number(view.getBigInt64(i * 8, true))
              : view.getInt32(i * 4, true);
  }
  return out;
}

/** float32 values as the little-endian bytes of `dtype`, rounded to nearest, ties to even. */
export function fromFloat32Array(values: Float32Array, dtype: FloatDtype): Buffer {
  if (!isFloat(dtype)) throw invalid('"F32", "F16" or "BF16"', 'dtype', dtype);
  const out = Buffer.alloc(values.length * DTYPE_SIZES[dtype]);
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (dtype === 'F32') out.writeFloatLE(v, i * 4);
    else out.writeUInt16LE(dtype === 'F16' ? f32ToF16(v) : f32ToBf16(v), i * 2);
  }
  return out;
}

/** The one value of a one-element tensor (such as a LoRA's `.alpha`), given its bytes. */
export function scalarValue(info: TensorInfo, bytes: Uint8Array): number {
  checkInfo(info);
  const count = info.shape.reduce((a, b) => a * b, 1);
  if (count !== 1 || bytes.length !== DTYPE_SIZES[info.dtype]) {
    throw new MultiloraError(
      'ERR_ADAPTER_INVALID',
      `Tensor ${quote(info.name)} should hold one number but has shape ${shown(info.shape)}`,
    );
  }
  return toFloat32Array(bytes, info.dtype)[0];
}

/** Reads a one-element tensor (such as a LoRA's `.alpha`) as a number. */
export async function readScalar(source: string | Uint8Array, info: TensorInfo): Promise<number> {
  return scalarValue(info, await readTensor(source, info));
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/**
 * A valid safetensors file of these tensors: keys in sorted order (`__metadata__` first), data in the same order,
 * the header padded with spaces so that the data section starts at a multiple of 8. Same input, same bytes.
 */
export function writeSafetensors(tensors: readonly TensorData[], metadata?: Record<string, string>): Buffer {
  if (!Array.isArray(tensors)) throw invalid('an array of tensors', 'tensors', tensors);
  const names = new Set<string>();
  const checked = tensors.map((tensor, i) => {
    const at = `tensors[${i}]`;
    if (!isPlainObject(tensor)) throw invalid('an object { name, dtype, shape, data }', at, tensor);
    const name = string(tensor.name, `${at}.name`, { nonEmpty: true });
    if (name === '__metadata__') throw invalid('a tensor name other than "__metadata__"', `${at}.name`, name);
    if (names.has(name)) throw invalid('a name that no other tensor has', `${at}.name`, name);
    names.add(name);
    if (typeof tensor.dtype !== 'string' || !Object.hasOwn(FLOAT_SIZES, tensor.dtype)) {
      throw invalid('"F32", "F16" or "BF16"', `${at}.dtype`, tensor.dtype);
    }
    const dtype = tensor.dtype as FloatDtype;
    if (!Array.isArray(tensor.shape) || !tensor.shape.every(isDim)) {
      throw invalid('an array of non-negative integers', `${at}.shape`, tensor.shape);
    }
    if (!(tensor.data instanceof Uint8Array)) throw invalid('a Buffer', `${at}.data`, tensor.data);
    const count = elementCount(tensor.shape, BigInt(tensor.data.length));
    if (count === undefined || count * BigInt(DTYPE_SIZES[dtype]) !== BigInt(tensor.data.length)) {
      throw invalid(
        `${count === undefined ? 'more' : count * BigInt(DTYPE_SIZES[dtype])} bytes (dtype ${dtype}, shape ${shown(tensor.shape)})`,
        `${at}.data`,
        tensor.data,
      );
    }
    return { name, dtype, shape: tensor.shape, data: tensor.data };
  });
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw invalid('an object of strings', 'metadata', metadata);
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw invalid('a string', `metadata[${JSON.stringify(key)}]`, value);
    }
  }

  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  checked.sort(byName);
  const entries: string[] = [];
  if (metadata !== undefined) {
    const pairs = Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    entries.push(`"__metadata__":{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const t of checked) {
    const end = offset + t.data.length;
    entries.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const headerLength = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = Buffer.alloc(8 + headerLength + offset, 0x20);
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(out, 8);
  let at = 8 + headerLength;
  for (const t of checked) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}
