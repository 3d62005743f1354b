// WASI error numbers, their POSIX-style names, and the error record the SDK hands back.
//
// AssemblyScript has no catchable exceptions (`throw` aborts the process), so SDK calls report
// failure by return value (null / false / negative errno) and leave the details in `lastError()`,
// the way C code reads `errno`.

/** Names indexed by WASI preview1 errno (0..76), as POSIX spells them. */
const NAMES: string[] = [
  "OK", "E2BIG", "EACCES", "EADDRINUSE", "EADDRNOTAVAIL", "EAFNOSUPPORT", "EAGAIN", "EALREADY",
  "EBADF", "EBADMSG", "EBUSY", "ECANCELED", "ECHILD", "ECONNABORTED", "ECONNREFUSED",
  "ECONNRESET", "EDEADLK", "EDESTADDRREQ", "EDOM", "EDQUOT", "EEXIST", "EFAULT", "EFBIG",
  "EHOSTUNREACH", "EIDRM", "EILSEQ", "EINPROGRESS", "EINTR", "EINVAL", "EIO", "EISCONN", "EISDIR",
  "ELOOP", "EMFILE", "EMLINK", "EMSGSIZE", "EMULTIHOP", "ENAMETOOLONG", "ENETDOWN", "ENETRESET",
  "ENETUNREACH", "ENFILE", "ENOBUFS", "ENODEV", "ENOENT", "ENOEXEC", "ENOLCK", "ENOLINK", "ENOMEM",
  "ENOMSG", "ENOPROTOOPT", "ENOSPC", "ENOSYS", "ENOTCONN", "ENOTDIR", "ENOTEMPTY",
  "ENOTRECOVERABLE", "ENOTSOCK", "ENOTSUP", "ENOTTY", "ENXIO", "EOVERFLOW", "EOWNERDEAD", "EPERM",
  "EPIPE", "EPROTO", "EPROTONOSUPPORT", "EPROTOTYPE", "ERANGE", "EROFS", "ESPIPE", "ESRCH",
  "ESTALE", "ETIMEDOUT", "ETXTBSY", "EXDEV", "ENOTCAPABLE",
];

// The few codes the SDK itself produces or tests for.
export const OK: u16 = 0;
export const EBADF: u16 = 8;
export const EEXIST: u16 = 20;
export const EINVAL: u16 = 28;
export const EIO: u16 = 29;
export const EISDIR: u16 = 31;
export const ENOENT: u16 = 44;
export const ENOTDIR: u16 = 54;
export const EPERM: u16 = 63;
export const ENOTCAPABLE: u16 = 76;

/** "ENOENT" for 44; "E#123" for a code outside the table. */
export function errnoName(code: u16): string {
  return <i32>code < NAMES.length ? NAMES[code] : "E#" + code.toString();
}

/** What failed, where, and why. `toString()` gives "/task/spec.json: ENOENT". */
export class FsError {
  /** WASI errno (0 when nothing has failed yet). */
  errno: u16;
  /** The SDK operation, e.g. "open", "read", "mkdir". */
  op: string;
  /** The namespace path it was applied to ("" for fd-level operations). */
  path: string;

  constructor(errno: u16, op: string, path: string) {
    this.errno = errno;
    this.op = op;
    this.path = path;
  }

  /** POSIX-style name, e.g. "ENOENT". */
  get name(): string {
    return errnoName(this.errno);
  }

  toString(): string {
    return this.path.length > 0 ? this.path + ": " + this.name : this.op + ": " + this.name;
  }
}

let last = new FsError(OK, "", "");

/** The most recent failure reported by an SDK call. */
export function lastError(): FsError {
  return last;
}

/** Records a failure; returns `code` so callers can `return fail(...)`. */
export function fail(code: u16, op: string, path: string): u16 {
  last = new FsError(code, op, path);
  return code;
}
