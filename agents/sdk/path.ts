// Namespace path helpers. Paths are absolute ("/workspace/a.txt"), '/'-separated, and are
// normalised lexically: "//" and "." collapse, ".." pops a segment and never climbs above "/".

/** Normalises to an absolute path: "a//b/./c/../d" -> "/a/b/d"; "" and "/.." -> "/". */
export function normalize(path: string): string {
  const parts = path.split("/");
  const out = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const seg = parts[i];
    if (seg.length == 0 || seg == ".") continue;
    if (seg == "..") {
      if (out.length > 0) out.pop();
      continue;
    }
    out.push(seg);
  }
  return "/" + out.join("/");
}

/** Joins two paths: join("/workspace", "notes/a.txt") -> "/workspace/notes/a.txt". */
export function join(base: string, rel: string): string {
  if (rel.startsWith("/")) return normalize(rel);
  return normalize(base + "/" + rel);
}

/** Last segment: basename("/a/b.txt") -> "b.txt"; basename("/") -> "". */
export function basename(path: string): string {
  const p = normalize(path);
  return p.substring(p.lastIndexOf("/") + 1);
}

/** Parent directory: dirname("/a/b.txt") -> "/a"; dirname("/a") -> "/". */
export function dirname(path: string): string {
  const p = normalize(path);
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.substring(0, i);
}

/**
 * `path` relative to `base` when it lies inside it: relative("/w", "/w/a/b") -> "a/b",
 * relative("/w", "/w") -> "". Returns null when `path` is not under `base` (segment-wise, so
 * "/wx" is not under "/w").
 */
export function relative(base: string, path: string): string | null {
  const b = normalize(base);
  const p = normalize(path);
  if (b == "/") return p.substring(1);
  if (p == b) return "";
  if (p.startsWith(b + "/")) return p.substring(b.length + 1);
  return null;
}
