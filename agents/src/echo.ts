// echo: probe for the WASI host's args, environment, stdin, stdout and exit codes.
//
// stdout: every argv entry as the host passed it (argv[0] included), one per line; then every
// environment entry as KEY=VALUE, one per line, in the host's order; then stdin copied through
// byte for byte until end of input.
// exit: the decimal integer in env EXIT_CODE (default 0); anything else in EXIT_CODE prints
// "echo: bad EXIT_CODE: <value>" to stderr and exits 2.

import { argv, eprintln, environ, exit, getenv, println, STDIN, STDOUT } from "../sdk";
import * as sys from "../sdk/sys";

const args = argv();
for (let i = 0; i < args.length; i++) println(args[i]);
const env = environ();
for (let i = 0; i < env.length; i++) println(env[i]);

// Copy stdin in 64 KiB chunks from a static buffer. A read error (e.g. no stdin) ends the copy.
const CHUNK: usize = 65536;
const buf = memory.data(<i32>CHUNK);
while (true) {
  const n = sys.read(STDIN, buf, CHUNK);
  if (n <= 0) break;
  if (sys.writeAll(STDOUT, buf, <usize>n) != 0) break;
}

/** A decimal exit code 0..999999999, or -1 when `s` is anything else. */
function parseExitCode(s: string): i32 {
  if (s.length == 0 || s.length > 9) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

const raw = getenv("EXIT_CODE", "0")!;
const code = parseExitCode(raw);
if (code < 0) {
  eprintln("echo: bad EXIT_CODE: " + raw);
  exit(2);
}
exit(code);
