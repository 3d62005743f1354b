// Runs the wasip1 tests of the official WASI test suite on the OANIX host, following its
// doc/specification.md: each test's `root` is copied into a memory service preopened as "/" (no
// preopen without one), args and env as given, exit code checked, stdout checked when specified.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadProgram } from "../../runtime/modules.ts";
import { Namespace } from "../../runtime/namespace.ts";
import { spawn } from "../../runtime/process.ts";
import { MemService } from "../../services/mem.ts";

export const SUITE_DIR = resolve(process.env.OANIX_WASI_TESTSUITE ?? join(import.meta.dirname, "../../../shared/wasi-testsuite"));
const LANGUAGES = ["assemblyscript", "c", "rust"];

interface Spec { args: string[]; env: Record<string, string>; root: string | null; exit_code: number; stdout?: string }
export interface Outcome { name: string; passed: boolean; detail: string }

export function listTests(dir = SUITE_DIR): { name: string; wasm: string; spec: Spec; dir: string }[] {
  const out = [];
  for (const lang of LANGUAGES) {
    const d = join(dir, "tests", lang, "testsuite", "wasm32-wasip1");
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((f) => f.endsWith(".wasm")).sort()) {
      const json = join(d, f.replace(/\.wasm$/, ".json"));
      const spec: Spec = { args: [], env: {}, root: null, exit_code: 0, ...(existsSync(json) ? JSON.parse(readFileSync(json, "utf8")) : {}) };
      out.push({ name: `${lang}/${f.replace(/\.wasm$/, "")}`, wasm: join(d, f), spec, dir: d });
    }
  }
  return out;
}

function copyInto(mem: MemService, host: string, rel = ""): void {
  for (const name of readdirSync(join(host, rel))) {
    if (name.endsWith(".cleanup")) continue;
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(join(host, r)).isDirectory()) {
      mem.mkdir(r);
      copyInto(mem, host, r);
    } else mem.writeFile(r, readFileSync(join(host, r)));
  }
}

export async function runTest(t: ReturnType<typeof listTests>[number]): Promise<Outcome> {
  const mem = new MemService();
  if (t.spec.root) copyInto(mem, join(t.dir, t.spec.root));
  const program = await loadProgram(readFileSync(t.wasm));
  const dec = new TextDecoder();
  let stdout = "";
  let stderr = "";
  const st = await spawn(program, {
    namespace: new Namespace().mount("/", mem),
    name: t.name,
    args: t.spec.args,
    env: t.spec.env,
    preopen: t.spec.root ? "/" : null,
    limits: { wallTimeMs: 30_000 },
    onStdout: (b) => void (stdout += dec.decode(b, { stream: true })),
    onStderr: (b) => void (stderr += dec.decode(b, { stream: true })),
  });
  const problems: string[] = [];
  if (st.code !== t.spec.exit_code) problems.push(`exit ${st.code}, expected ${t.spec.exit_code}${st.message ? ` (${st.message})` : ""}`);
  if (t.spec.stdout !== undefined && stdout !== t.spec.stdout) problems.push(`stdout ${JSON.stringify(stdout)}, expected ${JSON.stringify(t.spec.stdout)}`);
  if (problems.length && stderr) problems.push(`stderr: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return { name: t.name, passed: problems.length === 0, detail: problems.join("; ") };
}

export async function runSuite(dir = SUITE_DIR): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const t of listTests(dir)) out.push(await runTest(t));
  return out;
}
