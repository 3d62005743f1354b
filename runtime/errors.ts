// One error type for every file service, with a POSIX-like code. The WASI host maps each code to
// its errno in one table (runtime/wasi/errno.ts); everything else shows `code: message`.

export const ERROR_CODES = [
  "ENOENT", "EACCES", "EPERM", "EEXIST", "ENOTDIR", "EISDIR", "ENOTEMPTY", "EROFS", "EINVAL",
  "EXDEV", "ENOSPC", "EDQUOT", "EIO", "ETIMEDOUT", "EBADF", "ELOOP", "ENAMETOOLONG", "EFBIG",
  "ENOSYS", "ENOTSUP", "EBUSY", "EAGAIN", "EMFILE", "ESPIPE", "ECANCELED", "ECONNREFUSED", "ENOTCAPABLE",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string) {
    super(message ? `${code}: ${message}` : code);
    this.name = "FsError";
    this.code = code;
  }
}

export const fsError = (code: ErrorCode, message?: string): FsError => new FsError(code, message);

export function isFsError(e: unknown, code?: ErrorCode): e is FsError {
  return e instanceof FsError && (code === undefined || e.code === code);
}
