// What a name in a workspace may be: the runtime's rules (runtime/path.ts), applied to a path
// from a request by services/remote-wire.ts `wirePath`, which refuses a climb out of the workspace:
// - well-formed Unicode only (a lone surrogate could never be stored and found again): EILSEQ;
// - at most 255 bytes of UTF-8 (as Linux NAME_MAX counts): ENAMETOOLONG;
// - no NUL or control characters (U+0001–U+001F, U+007F): EINVAL — they break terminals and logs;
// - no normalisation: a name is stored as given, so NFC "é" and NFD "é" are two names (as on
//   Linux); clients that want one form normalise before they send.
import { wirePath } from "../../services/remote-wire.ts";

/** A workspace path from a request, normalised and checked ("" is the root). */
export const pathOf = (raw: string): string => wirePath(raw);
