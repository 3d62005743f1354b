// path_*: opening, creating, linking, renaming and removing names below a directory fd.
import { fsError } from "../errors.ts";
import type { FileHandle, MaybePromise, OpenFlags } from "../types.ts";
import { andThen } from "../types.ts";
import { closeQuietly } from "../handle.ts";
import type { Fd, Syscall, WasiCore } from "./core.ts";
import { enc } from "./core.ts";
import { ERRNO, FILETYPE, LOOKUP_SYMLINK_FOLLOW, OFLAGS, RIGHTS, RIGHTS_DIR, RIGHTS_FILE } from "./defs.ts";

export function pathSyscalls(w: WasiCore): Record<string, Syscall> {
  const fs = w.fs;
  const S = ERRNO.SUCCESS;
  return {
    path_create_directory: (fd: number, p: number, l: number) => {
      const { path } = w.path(fd, p, l, RIGHTS.PATH_CREATE_DIRECTORY);
      return andThen(fs.mkdir(path), () => S);
    },
    path_filestat_get: (fd: number, flags: number, p: number, l: number, ptr: number) => {
      const { path, dir } = w.path(fd, p, l, RIGHTS.PATH_FILESTAT_GET);
      const st = flags & LOOKUP_SYMLINK_FOLLOW || dir ? fs.stat(path) : w.lstat(path);
      return andThen(st, (s) => {
        if (dir && s.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
        return w.writeFilestat(ptr, s);
      });
    },
    path_filestat_set_times: (fd: number, flags: number, p: number, l: number, atim: bigint, mtim: bigint, fst: number) => {
      const { path } = w.path(fd, p, l, RIGHTS.PATH_FILESTAT_SET_TIMES);
      const [a, m] = w.times(atim, mtim, fst);
      if (!fs.setTimes) return ERRNO.NOSYS;
      return andThen(fs.setTimes(path, a, m, { nofollow: !(flags & LOOKUP_SYMLINK_FOLLOW) }), () => S);
    },
    path_link: (ofd: number, oflags: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
      // Linking through a symlink would let a guest name files by where links point: refused.
      if (oflags & LOOKUP_SYMLINK_FOLLOW) return ERRNO.INVAL;
      const from = w.path(ofd, op, ol, RIGHTS.PATH_LINK_SOURCE);
      const to = w.path(nfd, np, nl, RIGHTS.PATH_LINK_TARGET);
      if (!fs.link) return ERRNO.NOSYS;
      return andThen(w.lstat(from.path), (st) => {
        if (from.dir) throw fsError(st.type === "dir" ? "EPERM" : "ENOTDIR", `${from.path}: not a directory`);
        if (to.dir) return andThen(w.exists(to.path), (yes) => (yes ? ERRNO.EXIST : ERRNO.NOENT));
        return andThen(fs.link!(from.path, to.path), () => S);
      });
    },
    path_open: (fd: number, dirflags: number, p: number, l: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, out: number) => {
      const need = RIGHTS.PATH_OPEN | (oflags & OFLAGS.CREAT ? RIGHTS.PATH_CREATE_FILE : 0n) | (oflags & OFLAGS.TRUNC ? RIGHTS.PATH_FILESTAT_SET_SIZE : 0n);
      const parent = w.dir(fd, need);
      const { path, dir } = w.path(fd, p, l, need);
      const wantDir = !!(oflags & OFLAGS.DIRECTORY) || dir;
      const flags: OpenFlags = {
        read: (base & (RIGHTS.FD_READ | RIGHTS.FD_READDIR)) !== 0n,
        write: (base & RIGHTS.FD_WRITE) !== 0n,
        create: !!(oflags & OFLAGS.CREAT),
        exclusive: !!(oflags & OFLAGS.EXCL),
        truncate: !!(oflags & OFLAGS.TRUNC),
        directory: wantDir,
        nofollow: !(dirflags & LOOKUP_SYMLINK_FOLLOW),
      };
      if (wantDir && (flags.create || flags.truncate)) throw fsError(flags.create ? "EISDIR" : "EINVAL", `${path}: cannot create or truncate a directory`);
      if (flags.truncate && !flags.write) flags.write = true;
      // A handle that does not say what it is (type is optional in the contract) is asked once.
      const typed = (h: FileHandle): MaybePromise<[FileHandle, boolean]> =>
        h.type ? [h, h.type === "dir"] : andThen(h.stat(), (st) => [h, st.type === "dir"]);
      return andThen(andThen(fs.open(path, flags), typed), ([h, isDir]) => {
        if (wantDir && !isDir) {
          closeQuietly(h);
          throw fsError("ENOTDIR", `${path}: not a directory`);
        }
        const e: Fd = isDir
          ? { type: FILETYPE.DIRECTORY, path, base: base & RIGHTS_DIR & parent.inheriting, inheriting: inheriting & parent.inheriting, flags: fdflags }
          : { type: FILETYPE.REGULAR_FILE, path, handle: h, base: base & RIGHTS_FILE & parent.inheriting, inheriting: 0n, flags: fdflags };
        if (isDir) closeQuietly(h);
        let n = w.fds.indexOf(undefined, 3);
        if (n < 0) n = w.fds.length;
        w.fds[n] = e;
        return w.setU32(out, n);
      });
    },
    path_readlink: (fd: number, p: number, l: number, buf: number, len: number, used: number) => {
      const { path } = w.path(fd, p, l, RIGHTS.PATH_READLINK);
      if (!fs.readlink) return ERRNO.INVAL;
      return andThen(fs.readlink(path), (target) => {
        const b = enc.encode(target).subarray(0, len);
        w.mem().set(b, buf);
        return w.setU32(used, b.length);
      });
    },
    path_remove_directory: (fd: number, p: number, l: number) => {
      const { path } = w.path(fd, p, l, RIGHTS.PATH_REMOVE_DIRECTORY);
      return andThen(w.lstat(path), (st) => {
        if (st.type !== "dir") throw fsError("ENOTDIR", `${path}: not a directory`);
        return andThen(fs.remove(path), () => S);
      });
    },
    path_rename: (ofd: number, op: number, ol: number, nfd: number, np: number, nl: number) => {
      const from = w.path(ofd, op, ol, RIGHTS.PATH_RENAME_SOURCE);
      const to = w.path(nfd, np, nl, RIGHTS.PATH_RENAME_TARGET);
      return andThen(w.lstat(from.path), (st) => {
        if ((from.dir || to.dir) && st.type !== "dir") throw fsError("ENOTDIR", `${from.path}: not a directory`);
        return andThen(fs.rename(from.path, to.path), () => S);
      });
    },
    path_symlink: (op: number, ol: number, fd: number, np: number, nl: number) => {
      const target = w.str(op, ol);
      if (target.startsWith("/")) return ERRNO.PERM; // a link out of the sandbox is not a capability
      const { path, dir } = w.path(fd, np, nl, RIGHTS.PATH_SYMLINK);
      if (!fs.symlink) return ERRNO.NOSYS;
      if (dir) {
        // A trailing slash names a directory that must exist: EEXIST if it does, ENOENT if not.
        return andThen(w.exists(path), (yes) => (yes ? ERRNO.EXIST : ERRNO.NOENT));
      }
      return andThen(fs.symlink(target, path), () => S);
    },
    path_unlink_file: (fd: number, p: number, l: number) => {
      const { path, dir } = w.path(fd, p, l, RIGHTS.PATH_UNLINK_FILE);
      return andThen(w.lstat(path), (st) => {
        if (st.type === "dir") throw fsError("EISDIR", `${path}: is a directory`);
        if (dir) throw fsError("ENOTDIR", `${path}: not a directory`);
        return andThen(fs.remove(path), () => S);
      });
    },
  };
}
