// The process: arguments, environment, exit, and printing to stdout/stderr.
//
// Output is unbuffered: each print is one fd_write (retried on short writes), so lines from an
// agent interleave with its events in order and nothing is lost at exit.

import {
  args_get,
  args_sizes_get,
  environ_get,
  environ_sizes_get,
  proc_exit,
} from "bindings/wasi_snapshot_preview1";
import { writeAll } from "./sys";
import { decodeUtf8Z } from "./utf8";

export const STDIN: u32 = 0;
export const STDOUT: u32 = 1;
export const STDERR: u32 = 2;

const SIZES = memory.data(16, 8);

/** Reads a NUL-terminated string vector through one of the *_sizes_get / *_get pairs. */
function readVector(isEnv: bool): string[] {
  const err = isEnv
    ? environ_sizes_get(SIZES, SIZES + sizeof<usize>())
    : args_sizes_get(SIZES, SIZES + sizeof<usize>());
  const out = new Array<string>();
  if (err != 0) return out;
  const count = load<usize>(SIZES);
  const dataSize = load<usize>(SIZES, sizeof<usize>());
  const ptrs = new ArrayBuffer(<i32>(count * sizeof<usize>()));
  const data = new ArrayBuffer(<i32>dataSize);
  const base = changetype<usize>(ptrs);
  const err2 = isEnv ? environ_get(base, changetype<usize>(data)) : args_get(base, changetype<usize>(data));
  if (err2 != 0) return out;
  const end = changetype<usize>(data) + dataSize;
  for (let i: usize = 0; i < count; i++) {
    const p = load<usize>(base + i * sizeof<usize>());
    out.push(decodeUtf8Z(p, end));
  }
  return out;
}

let argvCache: string[] | null = null;
let envCache: string[] | null = null;

/** The full argument vector as the host passed it (argv[0] is conventionally the program). */
export function argv(): string[] {
  let v = argvCache;
  if (v == null) {
    v = readVector(false);
    argvCache = v;
  }
  return v;
}

/** Arguments after argv[0]. */
export function args(): string[] {
  const v = argv();
  return v.length > 1 ? v.slice(1) : new Array<string>();
}

/** The environment as "KEY=VALUE" strings, in the host's order. */
export function environ(): string[] {
  let v = envCache;
  if (v == null) {
    v = readVector(true);
    envCache = v;
  }
  return v;
}

/** Value of environment variable `name`, or `fallback` when it is not set. */
export function getenv(name: string, fallback: string | null = null): string | null {
  const list = environ();
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (kv.length > name.length && kv.charCodeAt(name.length) == 0x3d && kv.startsWith(name)) {
      return kv.substring(name.length + 1);
    }
    if (kv == name) return "";
  }
  return fallback;
}

/** Ends the process now with `code` (proc_exit never returns). */
export function exit(code: i32): void {
  proc_exit(<u32>code);
  unreachable();
}

/** Writes bytes to a descriptor; returns the errno (0 on success). */
export function writeBytes(fd: u32, data: Uint8Array): u16 {
  return writeAll(fd, data.dataStart, <usize>data.length);
}

/** Writes a string as UTF-8 to a descriptor; returns the errno (0 on success). */
export function writeString(fd: u32, text: string): u16 {
  const bytes = String.UTF8.encode(text);
  return writeAll(fd, changetype<usize>(bytes), <usize>bytes.byteLength);
}

export function print(text: string): void {
  writeString(STDOUT, text);
}

export function println(text: string): void {
  writeString(STDOUT, text + "\n");
}

export function eprint(text: string): void {
  writeString(STDERR, text);
}

export function eprintln(text: string): void {
  writeString(STDERR, text + "\n");
}
