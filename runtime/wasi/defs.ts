// wasi_snapshot_preview1 constants and the one table from FsError codes to WASI errno.
import type { ErrorCode } from "../errors.ts";

export const ERRNO = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, AGAIN: 6, BADF: 8, BUSY: 10, CANCELED: 11, CONNREFUSED: 14, CONNRESET: 15,
  DQUOT: 19, EXIST: 20, FAULT: 21, FBIG: 22, ILSEQ: 25, INVAL: 28, IO: 29, ISDIR: 31, LOOP: 32,
  MFILE: 33, MSGSIZE: 35, NAMETOOLONG: 37, NOENT: 44, NOSPC: 51, NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55,
  NOTSOCK: 57, NOTSUP: 58, NOTTY: 59, OVERFLOW: 61, PERM: 63, PIPE: 64, ROFS: 69, SPIPE: 70, TIMEDOUT: 73,
  XDEV: 75, NOTCAPABLE: 76,
} as const;

export const ERRNO_OF: Record<ErrorCode, number> = {
  ENOENT: ERRNO.NOENT, EACCES: ERRNO.ACCES, EPERM: ERRNO.PERM, EEXIST: ERRNO.EXIST, ENOTDIR: ERRNO.NOTDIR,
  EISDIR: ERRNO.ISDIR, ENOTEMPTY: ERRNO.NOTEMPTY, EROFS: ERRNO.ROFS, EINVAL: ERRNO.INVAL, EXDEV: ERRNO.XDEV,
  ENOSPC: ERRNO.NOSPC, EDQUOT: ERRNO.DQUOT, EIO: ERRNO.IO, ETIMEDOUT: ERRNO.TIMEDOUT, EBADF: ERRNO.BADF,
  ELOOP: ERRNO.LOOP, ENAMETOOLONG: ERRNO.NAMETOOLONG, EFBIG: ERRNO.FBIG, ENOSYS: ERRNO.NOSYS,
  ENOTSUP: ERRNO.NOTSUP, EBUSY: ERRNO.BUSY, EAGAIN: ERRNO.AGAIN, EMFILE: ERRNO.MFILE, ESPIPE: ERRNO.SPIPE,
  ECANCELED: ERRNO.CANCELED, ECONNREFUSED: ERRNO.CONNREFUSED, ENOTCAPABLE: ERRNO.NOTCAPABLE,
  EFAULT: ERRNO.FAULT, ECONNRESET: ERRNO.CONNRESET, ENOTCONN: ERRNO.NOTCONN, EPIPE: ERRNO.PIPE,
  EMSGSIZE: ERRNO.MSGSIZE, EILSEQ: ERRNO.ILSEQ,
};

export const FILETYPE = { UNKNOWN: 0, CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4, SYMBOLIC_LINK: 7 } as const;

export const FDFLAGS = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
export const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
export const LOOKUP_SYMLINK_FOLLOW = 1;
export const FSTFLAGS = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
export const WHENCE = { SET: 0, CUR: 1, END: 2 } as const;
export const CLOCK = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME: 2, THREAD_CPUTIME: 3 } as const;
export const EVENTTYPE = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
export const SUBCLOCKFLAGS_ABSTIME = 1;
export const PREOPENTYPE_DIR = 0;

export const RIGHTS = {
  FD_DATASYNC: 1n << 0n, FD_READ: 1n << 1n, FD_SEEK: 1n << 2n, FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n, FD_TELL: 1n << 5n, FD_WRITE: 1n << 6n, FD_ADVISE: 1n << 7n, FD_ALLOCATE: 1n << 8n,
  PATH_CREATE_DIRECTORY: 1n << 9n, PATH_CREATE_FILE: 1n << 10n, PATH_LINK_SOURCE: 1n << 11n,
  PATH_LINK_TARGET: 1n << 12n, PATH_OPEN: 1n << 13n, FD_READDIR: 1n << 14n, PATH_READLINK: 1n << 15n,
  PATH_RENAME_SOURCE: 1n << 16n, PATH_RENAME_TARGET: 1n << 17n, PATH_FILESTAT_GET: 1n << 18n,
  PATH_FILESTAT_SET_SIZE: 1n << 19n, PATH_FILESTAT_SET_TIMES: 1n << 20n, FD_FILESTAT_GET: 1n << 21n,
  FD_FILESTAT_SET_SIZE: 1n << 22n, FD_FILESTAT_SET_TIMES: 1n << 23n, PATH_SYMLINK: 1n << 24n,
  PATH_REMOVE_DIRECTORY: 1n << 25n, PATH_UNLINK_FILE: 1n << 26n, POLL_FD_READWRITE: 1n << 27n,
  SOCK_SHUTDOWN: 1n << 28n, SOCK_ACCEPT: 1n << 29n,
} as const;

const R = RIGHTS;
export const RIGHTS_ALL = (1n << 30n) - 1n;
/** What a regular file can do; a directory's base rights are what it can do to paths below it. */
export const RIGHTS_FILE = R.FD_DATASYNC | R.FD_READ | R.FD_SEEK | R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_TELL |
  R.FD_WRITE | R.FD_ADVISE | R.FD_ALLOCATE | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_SIZE | R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE;
export const RIGHTS_DIR = R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_ADVISE | R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE | R.PATH_LINK_SOURCE | R.PATH_LINK_TARGET | R.PATH_OPEN | R.FD_READDIR | R.PATH_READLINK |
  R.PATH_RENAME_SOURCE | R.PATH_RENAME_TARGET | R.PATH_FILESTAT_GET | R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_TIMES | R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY | R.PATH_UNLINK_FILE;
export const RIGHTS_STDIO = R.FD_READ | R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_DATASYNC |
  R.FD_FILESTAT_GET | R.POLL_FD_READWRITE;

// Struct layouts in guest memory (byte offsets, little-endian), beside the constants they carry.

/** iovec / ciovec: a buffer's pointer and length. */
export const IOVEC = { SIZE: 8, buf: 0, len: 4 } as const;
/** filestat: what fd_filestat_get and path_filestat_get fill. */
export const FILESTAT = { SIZE: 64, dev: 0, ino: 8, filetype: 16, nlink: 24, size: 32, atim: 40, mtim: 48, ctim: 56 } as const;
/** fdstat: fd_fdstat_get. */
export const FDSTAT = { SIZE: 24, filetype: 0, flags: 2, rightsBase: 8, rightsInheriting: 16 } as const;
/** prestat: fd_prestat_get (tag, then the directory name's length). */
export const PRESTAT = { SIZE: 8, tag: 0, nameLen: 4 } as const;
/** dirent: fd_readdir's entry header; the name's bytes follow it. */
export const DIRENT = { SIZE: 24, next: 0, ino: 8, namlen: 16, type: 20 } as const;
/** subscription: poll_oneoff's input (a clock's or an fd's, by tag). */
export const SUBSCRIPTION = { SIZE: 48, userdata: 0, tag: 8, clockId: 16, timeout: 24, precision: 32, flags: 40, fd: 16 } as const;
/** event: poll_oneoff's output. */
export const EVENT = { SIZE: 32, userdata: 0, error: 8, type: 10, nbytes: 16 } as const;
