// fd_*: reads, writes, seeks, stats and the fd table.
import type { DirEntry } from "../types.ts";
import { appendTo } from "../handle.ts";
import { andThen } from "../types.ts";
import type { Syscall, WasiCore } from "./core.ts";
import { DOT, DOTDOT, enc, FILETYPE_OF, I64_MAX } from "./core.ts";
import { DIRENT, ERRNO, FDSTAT, FILESTAT, PRESTAT, FDFLAGS, FILETYPE, PREOPENTYPE_DIR, RIGHTS, WHENCE } from "./defs.ts";

export function fdSyscalls(w: WasiCore): Record<string, Syscall> {
  const fs = w.fs;
  const S = ERRNO.SUCCESS;
  return {
    fd_advise: (fd: number, _off: bigint, _len: bigint, advice: number) => {
      w.file(fd, RIGHTS.FD_ADVISE);
      return advice > 5 ? ERRNO.INVAL : S;
    },
    fd_allocate: (fd: number, off: bigint, len: bigint) => {
      const e = w.file(fd, RIGHTS.FD_ALLOCATE);
      const end = Number(off + len);
      return andThen(e.handle.stat(), (st) => (end > st.size ? andThen(e.handle.truncate(end), () => S) : S));
    },
    fd_close: (fd: number) => {
      const e = w.fd(fd);
      w.fds[fd] = undefined;
      return e.handle ? andThen(e.handle.close(), () => S) : S;
    },
    fd_datasync: (fd: number) => andThen(w.file(fd, RIGHTS.FD_DATASYNC).handle.sync(), () => S),
    fd_sync: (fd: number) => {
      const e = w.fd(fd, RIGHTS.FD_SYNC);
      return e.handle ? andThen(e.handle.sync(), () => S) : S;
    },
    fd_fdstat_get: (fd: number, ptr: number) => {
      const e = w.fd(fd);
      const dv = w.view();
      dv.setUint8(ptr + FDSTAT.filetype, e.type);
      dv.setUint16(ptr + FDSTAT.flags, e.flags, true);
      dv.setBigUint64(ptr + FDSTAT.rightsBase, e.base, true);
      dv.setBigUint64(ptr + FDSTAT.rightsInheriting, e.inheriting, true);
      return S;
    },
    fd_fdstat_set_flags: (fd: number, flags: number) => {
      const e = w.fd(fd, RIGHTS.FD_FDSTAT_SET_FLAGS);
      if (flags & ~31) return ERRNO.INVAL;
      e.flags = flags;
      return S;
    },
    fd_fdstat_set_rights: (fd: number, base: bigint, inheriting: bigint) => {
      const e = w.fd(fd);
      if ((base & ~e.base) !== 0n || (inheriting & ~e.inheriting) !== 0n) return ERRNO.NOTCAPABLE;
      e.base = base;
      e.inheriting = inheriting;
      return S;
    },
    fd_filestat_get: (fd: number, ptr: number) => {
      const e = w.fd(fd, RIGHTS.FD_FILESTAT_GET);
      if (e.stdio !== undefined) {
        w.bytes(ptr, FILESTAT.SIZE).fill(0);
        w.view().setUint8(ptr + FILESTAT.filetype, FILETYPE.CHARACTER_DEVICE);
        return S;
      }
      return andThen(e.handle ? e.handle.stat() : fs.stat(e.path), (st) => w.writeFilestat(ptr, st));
    },
    fd_filestat_set_size: (fd: number, size: bigint) => {
      const e = w.file(fd, RIGHTS.FD_FILESTAT_SET_SIZE);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) return ERRNO.FBIG;
      return andThen(e.handle.truncate(Number(size)), () => S);
    },
    fd_filestat_set_times: (fd: number, atim: bigint, mtim: bigint, fst: number) => {
      const e = w.fd(fd, RIGHTS.FD_FILESTAT_SET_TIMES);
      const [a, m] = w.times(atim, mtim, fst);
      if (e.handle?.setTimes) return andThen(e.handle.setTimes(a, m), () => S);
      if (!fs.setTimes) return ERRNO.NOSYS;
      return andThen(fs.setTimes(e.path, a, m), () => S);
    },
    fd_pread: (fd: number, iovs: number, n: number, off: bigint, nread: number) => {
      const e = w.file(fd, RIGHTS.FD_READ | RIGHTS.FD_SEEK);
      if (off > I64_MAX) return ERRNO.INVAL;
      return w.readv(e.handle, iovs, n, nread, Number(off));
    },
    fd_pwrite: (fd: number, iovs: number, n: number, off: bigint, nwritten: number) => {
      const e = w.file(fd, RIGHTS.FD_WRITE | RIGHTS.FD_SEEK);
      if (off > I64_MAX) return ERRNO.INVAL;
      return andThen(e.handle.write(w.gather(iovs, n), Number(off)), (n) => w.setU32(nwritten, n));
    },
    fd_prestat_get: (fd: number, ptr: number) => {
      const e = w.fd(fd);
      if (e.preopen === undefined) return ERRNO.BADF;
      w.view().setUint8(ptr + PRESTAT.tag, PREOPENTYPE_DIR);
      return w.setU32(ptr + PRESTAT.nameLen, enc.encode(e.preopen).length);
    },
    fd_prestat_dir_name: (fd: number, ptr: number, len: number) => {
      const e = w.fd(fd);
      if (e.preopen === undefined) return ERRNO.BADF;
      const name = enc.encode(e.preopen);
      if (len < name.length) return ERRNO.NAMETOOLONG;
      w.mem().set(name, ptr);
      return S;
    },
    fd_read: (fd: number, iovs: number, n: number, nread: number) => {
      const e = w.fd(fd);
      if (e.stdio === 0) {
        const list = w.iovecs(iovs, n);
        return andThen(w.stdin(w.iovTotal(list)), (d) => w.setU32(nread, w.scatter(d, list)));
      }
      if (e.stdio !== undefined) return ERRNO.BADF;
      return w.readv(w.file(fd, RIGHTS.FD_READ).handle, iovs, n, nread);
    },
    fd_write: (fd: number, iovs: number, n: number, nwritten: number) => {
      const e = w.fd(fd);
      if (e.stdio !== undefined) {
        if (e.stdio === 0) return ERRNO.BADF;
        const data = w.gather(iovs, n);
        (e.stdio === 1 ? w.stdout : w.stderr)(data);
        return w.setU32(nwritten, data.length);
      }
      const f = w.file(fd, RIGHTS.FD_WRITE);
      const data = w.gather(iovs, n);
      if (f.flags & FDFLAGS.APPEND) return andThen(appendTo(f.handle, data), (n) => w.setU32(nwritten, n));
      return andThen(f.handle.write(data), (n) => w.setU32(nwritten, n));
    },
    fd_readdir: (fd: number, buf: number, len: number, cookie: bigint, used: number) => {
      const e = w.dir(fd, RIGHTS.FD_READDIR);
      const fill = (): number => {
        const list = e.dirents!;
        const dv = w.view();
        const mem = w.u8;
        let o = 0;
        for (let i = Number(cookie); i < list.length && o < len; i++) {
          const d = list[i]!;
          const size = DIRENT.SIZE + d.name.length;
          if (o + size <= len) {
            dv.setBigUint64(buf + o + DIRENT.next, BigInt(i + 1), true);
            dv.setBigUint64(buf + o + DIRENT.ino, BigInt(d.ino), true);
            dv.setUint32(buf + o + DIRENT.namlen, d.name.length, true);
            dv.setUint32(buf + o + DIRENT.type, d.type, true);
            mem.set(d.name, buf + o + DIRENT.SIZE);
          } else {
            // The last entry is cut at the buffer's end, as WASI specifies; the guest asks again.
            const entry = new Uint8Array(size);
            const ev = new DataView(entry.buffer);
            ev.setBigUint64(DIRENT.next, BigInt(i + 1), true);
            ev.setBigUint64(DIRENT.ino, BigInt(d.ino), true);
            ev.setUint32(DIRENT.namlen, d.name.length, true);
            ev.setUint8(DIRENT.type, d.type);
            entry.set(d.name, DIRENT.SIZE);
            mem.set(entry.subarray(0, len - o), buf + o);
          }
          o = Math.min(len, o + size);
        }
        dv.setUint32(used, o, true);
        return S;
      };
      if (cookie !== 0n && e.dirents) return fill();
      return andThen(fs.readdir(e.path), (list: DirEntry[]) => andThen(fs.stat(e.path), (st) => {
        e.dirents = [
          { name: DOT, type: FILETYPE.DIRECTORY, ino: st.ino },
          { name: DOTDOT, type: FILETYPE.DIRECTORY, ino: 0 },
          ...list.map((d) => ({ name: enc.encode(d.name), type: FILETYPE_OF[d.type], ino: d.ino ?? 0 })),
        ];
        return fill();
      }));
    },
    fd_renumber: (from: number, to: number) => {
      const e = w.fd(from);
      const old = w.fd(to);
      w.fds[to] = e;
      w.fds[from] = undefined;
      return old.handle && old !== e ? andThen(old.handle.close(), () => S) : S;
    },
    fd_seek: (fd: number, off: bigint, whence: number, ptr: number) => {
      const e = w.fd(fd);
      if (e.stdio !== undefined) return ERRNO.SPIPE;
      const f = w.file(fd, off === 0n && whence === WHENCE.CUR ? RIGHTS.FD_TELL : RIGHTS.FD_SEEK);
      const h = f.handle;
      const set = (base: number): number => {
        const pos = BigInt(base) + off;
        if (pos < 0n || pos > I64_MAX) return ERRNO.INVAL;
        h.position = Number(pos);
        return w.setU64(ptr, pos);
      };
      if (whence === WHENCE.SET) return set(0);
      if (whence === WHENCE.CUR) return set(h.position);
      if (whence === WHENCE.END) return andThen(h.stat(), (st) => set(st.size));
      return ERRNO.INVAL;
    },
    fd_tell: (fd: number, ptr: number) => {
      const e = w.fd(fd);
      if (e.stdio !== undefined) return ERRNO.SPIPE;
      return w.setU64(ptr, BigInt(w.file(fd, RIGHTS.FD_TELL).handle.position));
    },
  };
}
