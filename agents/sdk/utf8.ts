// Strict UTF-8 decoding. AssemblyScript's String.UTF8.decode does not validate: a stray byte can
// swallow the bytes after it. This decoder follows the WHATWG rules instead: every maximal
// invalid subsequence (bad lead byte, bad or missing continuation, overlong form, surrogate,
// beyond U+10FFFF) becomes one U+FFFD and decoding resumes at the next byte that could start a
// character.

const REPLACEMENT: u16 = 0xfffd;

/** Decodes [ptr, ptr + len). */
export function decodeUtf8(ptr: usize, len: usize): string {
  // One UTF-16 unit per input byte is the worst case (a 4-byte sequence gives two units).
  const out = new ArrayBuffer(<i32>(len << 1));
  const base = changetype<usize>(out);
  let o: usize = 0;
  let i: usize = 0;
  while (i < len) {
    const b0 = <u32>load<u8>(ptr + i);
    if (b0 < 0x80) {
      store<u16>(base + o, <u16>b0);
      o += 2;
      i++;
      continue;
    }
    let need = 0;
    let cp: u32 = 0;
    let lower: u32 = 0x80;
    let upper: u32 = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      if (b0 == 0xe0) lower = 0xa0; // overlong
      if (b0 == 0xed) upper = 0x9f; // UTF-16 surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 == 0xf0) lower = 0x90; // overlong
      if (b0 == 0xf4) upper = 0x8f; // above U+10FFFF
    }
    let j = i + 1;
    let ok = need > 0;
    for (let k = 0; k < need; k++) {
      if (j >= len) {
        ok = false;
        break;
      }
      const b = <u32>load<u8>(ptr + j);
      if (b < lower || b > upper) {
        ok = false;
        break;
      }
      lower = 0x80;
      upper = 0xbf;
      cp = (cp << 6) | (b & 0x3f);
      j++;
    }
    if (!ok) {
      store<u16>(base + o, REPLACEMENT);
      o += 2;
      i = j; // skip the valid prefix; the offending byte starts over
      continue;
    }
    if (cp < 0x10000) {
      store<u16>(base + o, <u16>cp);
      o += 2;
    } else {
      cp -= 0x10000;
      store<u16>(base + o, <u16>(0xd800 | (cp >> 10)));
      store<u16>(base + o + 2, <u16>(0xdc00 | (cp & 0x3ff)));
      o += 4;
    }
    i = j;
  }
  return String.UTF16.decodeUnsafe(base, o);
}

/** Decodes a whole byte array. */
export function utf8ToString(bytes: Uint8Array): string {
  return decodeUtf8(bytes.dataStart, <usize>bytes.length);
}

/** Decodes a NUL-terminated string starting at `ptr`, reading no further than `end`. */
export function decodeUtf8Z(ptr: usize, end: usize): string {
  let n: usize = 0;
  while (ptr + n < end && load<u8>(ptr + n) != 0) n++;
  return decodeUtf8(ptr, n);
}
