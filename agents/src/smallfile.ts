// smallfile (benchmark): small-file I/O and metadata churn through raw WASI calls.
//
// usage: smallfile DIR ITERATIONS   (DIR is created if missing)
// Iteration i works on DIR/f<i%16>.txt:
//   create (path_open O_CREAT|O_TRUNC), write 100 bytes, close;
//   open, read it back (must get 100 bytes), close;
//   stat (path_filestat_get; size must be 100);
//   readdir DIR (open, fd_readdir to the end, close; the file must be listed);
//   unlink.
// Counted ops: create, write, read, stat, readdir, unlink = 6 per iteration (the opens for
// reading and the closes are not counted). stdout: "ops=<6*ITERATIONS>\n", exit 0.
// Errors: "smallfile: <op> <path>: <ERRNO>" on stderr, exit 1; bad usage: exit 2.
// Paths are resolved once before the loop and every buffer is static: the loop allocates nothing.

import { args, eprintln, errnoName, exit, mkdir, lastError, println } from "../sdk";
import * as sys from "../sdk/sys";

const SLOTS = 16;
const PAYLOAD: usize = 100;
const DIRBUF: usize = 4096;

const payload = memory.data(<i32>PAYLOAD);
const readBuf = memory.data(256);
const dirBuf = memory.data(<i32>DIRBUF, 8);
const st = memory.data(<i32>sys.FILESTAT_SIZE, 8);

function die(op: string, path: string, err: u16): void {
  eprintln("smallfile: " + op + " " + path + ": " + errnoName(err));
  exit(1);
}

function dieMsg(op: string, path: string, msg: string): void {
  eprintln("smallfile: " + op + " " + path + ": " + msg);
  exit(1);
}

/** Lists `dir` to the end; true if an entry named like `name` (UTF-8 bytes) was seen. */
function listContains(dir: sys.PathRef, name: ArrayBuffer): bool {
  const fd = sys.open(dir, sys.O_DIRECTORY, 0, sys.RIGHTS_DIR);
  if (fd < 0) die("readdir", dir.path, <u16>-fd);
  let found = false;
  let cookie: u64 = 0;
  while (true) {
    const used = sys.readdir(<u32>fd, dirBuf, DIRBUF, cookie);
    if (used < 0) die("readdir", dir.path, <u16>-used);
    let off: usize = 0;
    while (off + sys.DIRENT_SIZE <= <usize>used) {
      const namlen = <usize>load<u32>(dirBuf + off, 16);
      if (off + sys.DIRENT_SIZE + namlen > <usize>used) break;
      if (namlen == <usize>name.byteLength &&
          memory.compare(dirBuf + off + sys.DIRENT_SIZE, changetype<usize>(name), namlen) == 0) {
        found = true;
      }
      cookie = load<u64>(dirBuf + off);
      off += sys.DIRENT_SIZE + namlen;
    }
    if (<usize>used < DIRBUF) break;
  }
  sys.close(<u32>fd);
  return found;
}

// ---- arguments and setup (the only allocations) ----

const argv = args();
if (argv.length < 2) {
  eprintln("usage: smallfile DIR ITERATIONS");
  exit(2);
}
const dirPath = argv[0];
const iterations = I32.parseInt(argv[1]);
if (iterations <= 0) {
  eprintln("smallfile: ITERATIONS must be a positive integer, got " + argv[1]);
  exit(2);
}
if (!mkdir(dirPath, true)) {
  eprintln("smallfile: mkdir " + lastError().toString());
  exit(1);
}
const dirRef = sys.resolve(dirPath);
if (dirRef == null) die("resolve", dirPath, lastError().errno);

const files = new Array<sys.PathRef>(SLOTS);
const names = new Array<ArrayBuffer>(SLOTS);
for (let k = 0; k < SLOTS; k++) {
  const name = "f" + k.toString() + ".txt";
  const ref = sys.resolve(dirPath + "/" + name);
  if (ref == null) die("resolve", dirPath + "/" + name, lastError().errno);
  files[k] = ref!;
  names[k] = String.UTF8.encode(name);
}
for (let i: usize = 0; i < PAYLOAD; i++) store<u8>(payload + i, <u8>(0x61 + i % 26));
store<u8>(payload + PAYLOAD - 1, 0x0a);

// ---- the loop ----

let ops: u64 = 0;
for (let i = 0; i < iterations; i++) {
  const file = files[i % SLOTS];

  const wfd = sys.open(file, sys.O_CREAT | sys.O_TRUNC, 0, sys.RIGHTS_WRITE);
  if (wfd < 0) die("create", file.path, <u16>-wfd);
  ops++;
  const wrote = sys.write(<u32>wfd, payload, PAYLOAD);
  if (wrote < 0) die("write", file.path, <u16>-wrote);
  if (<usize>wrote != PAYLOAD) dieMsg("write", file.path, "short write");
  ops++;
  sys.close(<u32>wfd);

  const rfd = sys.open(file, 0, 0, sys.RIGHTS_READ);
  if (rfd < 0) die("open", file.path, <u16>-rfd);
  const got = sys.read(<u32>rfd, readBuf, 256);
  if (got < 0) die("read", file.path, <u16>-got);
  if (<usize>got != PAYLOAD) dieMsg("read", file.path, "read " + got.toString() + " of 100 bytes");
  ops++;
  sys.close(<u32>rfd);

  const serr = sys.stat(file, st);
  if (serr != 0) die("stat", file.path, serr);
  if (load<u64>(st, sys.FILESTAT_SIZE_FIELD) != <u64>PAYLOAD) dieMsg("stat", file.path, "size is not 100");
  ops++;

  if (!listContains(dirRef!, names[i % SLOTS])) dieMsg("readdir", dirRef!.path, "new file not listed");
  ops++;

  const uerr = sys.unlink(file);
  if (uerr != 0) die("unlink", file.path, uerr);
  ops++;
}
println("ops=" + ops.toString());
