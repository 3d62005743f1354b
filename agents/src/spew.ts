// spew: a guest that writes to stdout without end, for output-limit tests.
//
// stdout: 64-byte lines "spew: the quick brown fox jumps over the lazy dog 0123456789abc\n",
// 64 of them per fd_write (4 KiB a call), forever. It stops only if a write fails: then it
// prints "spew: stdout: <ERRNO NAME>" to stderr and exits 1.

import { eprintln, errnoName, exit, STDOUT } from "../sdk";
import * as sys from "../sdk/sys";

const LINE = String.UTF8.encode("spew: the quick brown fox jumps over the lazy dog 0123456789abc\n");
const LINE_LEN: usize = 64;
const CHUNK: usize = 4096;
const chunk = memory.data(<i32>CHUNK);
assert(<usize>LINE.byteLength == LINE_LEN);
for (let off: usize = 0; off < CHUNK; off += LINE_LEN) {
  memory.copy(chunk + off, changetype<usize>(LINE), LINE_LEN);
}

while (true) {
  const err = sys.writeAll(STDOUT, chunk, CHUNK);
  if (err != 0) {
    eprintln("spew: stdout: " + errnoName(err));
    exit(1);
  }
}
