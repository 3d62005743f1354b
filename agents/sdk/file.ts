// Open file handles, for what whole-file calls cannot do: the ctl pattern of capability files
// (write a request and read the reply on the same handle), streaming, and incremental writes.
//
//   const f = File.open("/cap/llm/new", "r+");
//   if (f == null) fail(lastError());
//   f.writeText(request.toString());
//   const reply = f.readText();
//   f.close();

import { EISDIR, fail } from "./errno";
import * as sys from "./sys";
import { decodeUtf8 } from "./utf8";

export class File {
  /** The WASI descriptor (usable with the raw calls in sys.ts). */
  fd: u32;
  /** The namespace path it was opened as, for error messages. */
  path: string;
  private closed: bool = false;

  constructor(fd: u32, path: string) {
    this.fd = fd;
    this.path = path;
  }

  /**
   * Opens `path`. Modes: "r" read; "r+" read and write, no create; "w" write, create or
   * truncate; "a" append, create if needed; "w+" / "a+" also readable. Null on failure.
   */
  static open(path: string, mode: string = "r"): File | null {
    const ref = sys.resolve(path);
    if (ref == null) return null;
    let oflags: u16 = 0;
    let fdflags: u16 = 0;
    let rights = sys.RIGHTS_READ;
    if (mode == "r+") {
      rights = sys.RIGHTS_WRITE;
    } else if (mode == "w" || mode == "w+") {
      oflags = sys.O_CREAT | sys.O_TRUNC;
      rights = sys.RIGHTS_WRITE;
    } else if (mode == "a" || mode == "a+") {
      oflags = sys.O_CREAT;
      fdflags = sys.FD_APPEND;
      rights = sys.RIGHTS_WRITE;
    } else if (mode != "r") {
      fail(28 /* EINVAL */, "open(" + mode + ")", path);
      return null;
    }
    const fd = sys.open(ref, oflags, fdflags, rights);
    if (fd < 0) {
      fail(<u16>-fd, "open", path);
      return null;
    }
    return new File(<u32>fd, path);
  }

  /** One read of up to `max` bytes; an empty array at end of file; null on error. */
  read(max: i32 = 65536): Uint8Array | null {
    const buf = new Uint8Array(max);
    const n = sys.read(this.fd, buf.dataStart, <usize>max);
    if (n < 0) {
      fail(<u16>-n, "read", this.path);
      return null;
    }
    return buf.subarray(0, <i32>n);
  }

  /** Everything up to end of file (whatever the size stat reports); null on error. */
  readAll(): Uint8Array | null {
    let cap: i32 = 4096;
    const st = memory.data(<i32>sys.FILESTAT_SIZE, 8);
    if (sys.fstat(this.fd, st) == 0) {
      if (load<u8>(st, sys.FILESTAT_TYPE) == sys.TYPE_DIR) {
        fail(EISDIR, "read", this.path);
        return null;
      }
      // A size hint; +1 so the read that sees end of file needs no growth.
      const size = load<u64>(st, sys.FILESTAT_SIZE_FIELD);
      if (size > 0 && size < 0x7000_0000) cap = <i32>size + 1;
    }
    let buf = new Uint8Array(cap);
    let n: i32 = 0;
    while (true) {
      if (n == buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        memory.copy(bigger.dataStart, buf.dataStart, <usize>n);
        buf = bigger;
      }
      const got = sys.read(this.fd, buf.dataStart + <usize>n, <usize>(buf.length - n));
      if (got < 0) {
        fail(<u16>-got, "read", this.path);
        return null;
      }
      if (got == 0) break;
      n += <i32>got;
    }
    return buf.subarray(0, n);
  }

  /** Everything up to end of file as UTF-8 text; null on error. */
  readText(): string | null {
    const bytes = this.readAll();
    return bytes != null ? decodeUtf8(bytes.dataStart, <usize>bytes.length) : null;
  }

  /** Writes all of `data` (retrying short writes). */
  write(data: Uint8Array): bool {
    const err = sys.writeAll(this.fd, data.dataStart, <usize>data.length);
    if (err != 0) fail(err, "write", this.path);
    return err == 0;
  }

  /** Writes `text` as UTF-8 in one call. */
  writeText(text: string): bool {
    const bytes = String.UTF8.encode(text);
    const err = sys.writeAll(this.fd, changetype<usize>(bytes), <usize>bytes.byteLength);
    if (err != 0) fail(err, "write", this.path);
    return err == 0;
  }

  /** Closes the descriptor (a second close is a no-op). */
  close(): bool {
    if (this.closed) return true;
    this.closed = true;
    const err = sys.close(this.fd);
    if (err != 0) fail(err, "close", this.path);
    return err == 0;
  }
}
