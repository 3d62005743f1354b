// bigread (benchmark): sequential read throughput.
//
// usage: bigread PATH — opens PATH and reads it to the end in 64 KiB fd_read calls into one
// static buffer. stdout: "bytes=<total>\n", exit 0. Errors: "bigread: <op> <path>: <ERRNO>" on
// stderr, exit 1; missing argument: usage on stderr, exit 2.

import { args, eprintln, errnoName, exit, println } from "../sdk";
import * as sys from "../sdk/sys";

const CHUNK: usize = 65536;
const buf = memory.data(<i32>CHUNK);

const argv = args();
if (argv.length < 1) {
  eprintln("usage: bigread PATH");
  exit(2);
}
const path = argv[0];
const ref = sys.resolve(path);
if (ref == null) {
  eprintln("bigread: resolve " + path + ": ENOTCAPABLE");
  exit(1);
}
const fd = sys.open(ref!, 0, 0, sys.RIGHTS_READ);
if (fd < 0) {
  eprintln("bigread: open " + path + ": " + errnoName(<u16>-fd));
  exit(1);
}
let total: u64 = 0;
while (true) {
  const n = sys.read(<u32>fd, buf, CHUNK);
  if (n < 0) {
    eprintln("bigread: read " + path + ": " + errnoName(<u16>-n));
    exit(1);
  }
  if (n == 0) break;
  total += <u64>n;
}
sys.close(<u32>fd);
println("bytes=" + total.toString());
