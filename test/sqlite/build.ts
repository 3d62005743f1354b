// Builds SQLite (the amalgamation) with test/sqlite/driver.c into test/sqlite/build/sqlite-driver.wasm
// (wasm32-wasi), for the tests that run a real program nobody here wrote on every kind of mount.
//
//   node test/sqlite/build.ts          build when out of date (part of `npm run build:agents`)
//   node test/sqlite/build.ts --force  rebuild
//
// The amalgamation ships inside the npm package better-sqlite3 (deps/sqlite3/sqlite3.c); it is
// not a dependency, so the tarball is fetched with `npm pack` into a temporary directory. The
// output is cached by a hash of its inputs (driver, this script, the package version), written
// beside it as sqlite-driver.hash: a warm build reads two files and touches no network.
// Needs Debian's clang, lld, wasi-libc and libclang-rt-14-dev-wasm32; without clang it says so
// and exits 0 (the SQLite tests then skip with the same message).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SQLITE_WASM = path.join(HERE, "build", "sqlite-driver.wasm");
const HASH_FILE = path.join(HERE, "build", "sqlite-driver.hash");
/** The package (and so the SQLite version) the amalgamation comes from: SQLite 3.53.2. */
const PACKAGE = "better-sqlite3@12.11.1";
const CFLAGS = [
  "--target=wasm32-wasi", "--sysroot=/usr", "-O2",
  "-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_DEFAULT_UNIX_VFS=\"unix-none\"",
  "-Wno-everything",
];

export const NO_CLANG = "SQLite tests skipped: clang is not installed (apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32)";

export function hasClang(): boolean {
  try {
    execFileSync("clang", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function inputsHash(): string {
  const h = createHash("sha256");
  for (const f of ["driver.c", "build.ts"]) h.update(fs.readFileSync(path.join(HERE, f)));
  h.update(PACKAGE + "\0" + CFLAGS.join(" "));
  return h.digest("hex");
}

/** Builds when out of date; returns false (and says why) when clang is missing. */
export function build(force = false, log: (s: string) => void = console.log): boolean {
  const hash = inputsHash();
  if (!force && fs.existsSync(SQLITE_WASM) && fs.existsSync(HASH_FILE) && fs.readFileSync(HASH_FILE, "utf8") === hash) return true;
  if (!hasClang()) {
    log(NO_CLANG);
    return false;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "oanix-sqlite-"));
  try {
    log(`sqlite: fetching ${PACKAGE} (npm pack) for its amalgamation`);
    const tgz = execFileSync("npm", ["pack", PACKAGE, "--silent"], { cwd: tmp, encoding: "utf8" }).trim().split("\n").pop()!;
    execFileSync("tar", ["xzf", tgz, "package/deps/sqlite3"], { cwd: tmp });
    const src = path.join(tmp, "package", "deps", "sqlite3");
    log("sqlite: compiling sqlite3.c + driver.c for wasm32-wasi (about 30 s)");
    fs.mkdirSync(path.dirname(SQLITE_WASM), { recursive: true });
    const out = path.join(tmp, "sqlite-driver.wasm");
    execFileSync("clang", [...CFLAGS, "-I", src, path.join(HERE, "driver.c"), path.join(src, "sqlite3.c"), "-o", out], { stdio: "inherit" });
    fs.copyFileSync(out, SQLITE_WASM + ".tmp");
    fs.renameSync(SQLITE_WASM + ".tmp", SQLITE_WASM);
    fs.writeFileSync(HASH_FILE, hash);
    log(`sqlite: built ${path.relative(process.cwd(), SQLITE_WASM)} (${fs.statSync(SQLITE_WASM).size} bytes)`);
    return true;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  build(process.argv.includes("--force"));
}
