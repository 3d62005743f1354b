// One error type for every file service, with a POSIX-like code. The WASI host maps each code to
// its errno in one table (runtime/wasi/errno.ts); everything else shows `code: message`.

export const ERROR_CODES = [
  "ENOENT", "EACCES", "EPERM", "EEXIST", "ENOTDIR", "EISDIR", "ENOTEMPTY", "EROFS", "EINVAL",
  "EXDEV", "ENOSPC", "EDQUOT", "EIO", "ETIMEDOUT", "EBADF", "ELOOP", "ENAMETOOLONG", "EFBIG",
  "ENOSYS", "ENOTSUP", "EBUSY", "EAGAIN", "EMFILE", "ESPIPE", "ECANCELED", "ECONNREFUSED", "ENOTCAPABLE",
  "EFAULT", "ECONNRESET", "ENOTCONN", "EPIPE", "EMSGSIZE", "EILSEQ",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where an error happened (as Go's PathError): the operation and the path it named. */
export interface ErrorPlace { op?: string; path?: string }

export class FsError extends Error {
  readonly code: ErrorCode;
  readonly op?: string;
  readonly path?: string;
  constructor(code: ErrorCode, message?: string, place: ErrorPlace = {}) {
    super(message ? `${code}: ${message}` : code);
    this.name = "FsError";
    this.code = code;
    if (place.op !== undefined) this.op = place.op;
    if (place.path !== undefined) this.path = place.path;
  }
}

export const fsError = (code: ErrorCode, message?: string, place?: ErrorPlace): FsError => new FsError(code, message, place);

export function isFsError(e: unknown, code?: ErrorCode): e is FsError {
  return e instanceof FsError && (code === undefined || e.code === code);
}
