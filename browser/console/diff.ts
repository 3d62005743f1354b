// A line diff (longest common subsequence), for two versions of a file on the console page.
export type DiffLine = { op: " " | "-" | "+"; text: string };

/** Lines of `a` and `b` marked kept, removed or added; null when too big to compare here. */
export function diffLines(a: string, b: string, maxCells = 4_000_000): DiffLine[] | null {
  const x = a.split("\n");
  const y = b.split("\n");
  // Common head and tail cost nothing; only the middle needs the table.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const n = xs.length;
  const m = ys.length;
  if ((n + 1) * (m + 1) > maxCells) return null;
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i * w + j] = xs[i] === ys[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
  const out: DiffLine[] = x.slice(0, head).map((text) => ({ op: " ", text }));
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && xs[i] === ys[j]) out.push({ op: " ", text: xs[i++]! }), j++;
    else if (j < m && (i === n || lcs[i * w + j + 1]! > lcs[(i + 1) * w + j]!)) out.push({ op: "+", text: ys[j++]! });
    else out.push({ op: "-", text: xs[i++]! });
  }
  for (const text of x.slice(x.length - tail)) out.push({ op: " ", text });
  return out;
}
