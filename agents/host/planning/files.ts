// Workspace files for the planning host, over any FileService (mem:, dir:, an edge workspace):
// whole-file reads and writes, written to a temporary name and renamed so a reader (or a run
// resumed after a crash) never sees half a record.
import { FsError } from "../../../runtime/errors.ts";
import type { FileService } from "../../../runtime/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The file's text, or null when it does not exist. Other errors are thrown. */
export async function readText(fs: FileService, path: string): Promise<string | null> {
  let h;
  try {
    h = await fs.open(path, { read: true });
  } catch (e) {
    if (e instanceof FsError && e.code === "ENOENT") return null;
    throw e;
  }
  try {
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const b = await h.read(1 << 16, offset);
      if (!b.length) break;
      parts.push(b.slice());
      offset += b.length;
    }
    const all = new Uint8Array(offset);
    let at = 0;
    for (const p of parts) all.set(p, (at += p.length) - p.length);
    return dec.decode(all);
  } finally {
    await h.close();
  }
}

/** Creates `dir` and its parents (existing ones are fine). */
export async function mkdirs(fs: FileService, dir: string): Promise<void> {
  let at = "";
  for (const seg of dir.split("/").filter(Boolean)) {
    at = at ? `${at}/${seg}` : seg;
    try {
      await fs.mkdir(at);
    } catch (e) {
      if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
    }
  }
}

/** Writes the whole file through a temporary name and a rename (atomic where the service is). */
export async function writeText(fs: FileService, path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await mkdirs(fs, path.slice(0, slash));
  const tmp = `${path}.tmp`;
  const h = await fs.open(tmp, { write: true, create: true, truncate: true });
  try {
    await h.write(enc.encode(text), 0);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, path);
}

/** Appends one line (a JSON record) to a file, creating it. */
export async function appendLine(fs: FileService, path: string, line: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await mkdirs(fs, path.slice(0, slash));
  const h = await fs.open(path, { write: true, append: true, create: true });
  try {
    await h.write(enc.encode(line.endsWith("\n") ? line : line + "\n"));
  } finally {
    await h.close();
  }
}

/** Names in a directory, or [] when it does not exist. */
export async function list(fs: FileService, dir: string): Promise<{ name: string; type: string }[]> {
  try {
    return (await fs.readdir(dir)).map((e) => ({ name: e.name, type: e.type }));
  } catch (e) {
    if (e instanceof FsError && e.code === "ENOENT") return [];
    throw e;
  }
}

/** Renames, answering false (not an error) when the source is already gone. */
export async function moveIfThere(fs: FileService, from: string, to: string): Promise<boolean> {
  try {
    await fs.rename(from, to);
    return true;
  } catch (e) {
    if (e instanceof FsError && e.code === "ENOENT") return false;
    throw e;
  }
}
