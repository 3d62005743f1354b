// Numbers from a request (edge/http/request.ts `natural`): every one is checked; a bad one is
// 400 EINVAL and creates nothing (issue 7).
import { describe, expect, it } from "vitest";
import { call, createWs, json, newKey } from "../testing.ts";

const errCode = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;

describe("numbers from a request", () => {
  it("a fork with a version that is not a natural number is EINVAL and creates nothing", async () => {
    const a = newKey();
    const ws = await createWs(a);
    for (const version of ["x", -1, 1.5, "3"]) {
      const to = "f-" + crypto.randomUUID().slice(0, 8);
      const r = await call(a, "POST", `/w/${ws}/fork`, { to, version });
      expect(r.status, String(version)).toBe(400);
      expect(await errCode(r)).toBe("EINVAL");
      expect((await call(a, "GET", `/w/${to}`)).status, `${to} must not exist`).toBe(404);
    }
    const to = "f-" + crypto.randomUUID().slice(0, 8);
    expect((await call(a, "POST", `/w/${ws}/fork`, { to, version: 0 })).status).toBe(201);
  });

  it("query numbers (versions limit, audit after/limit, logs from) are EINVAL when not natural", async () => {
    const a = newKey();
    const ws = await createWs(a);
    for (const q of [`/w/${ws}/versions?limit=abc`, `/w/${ws}/versions?limit=-5`, `/w/${ws}/audit?after=x`, `/w/${ws}/audit?limit=1e3`, `/w/${ws}/logs/s?from=abc`]) {
      const r = await call(a, "GET", q);
      expect(r.status, q).toBe(400);
      expect(await errCode(r), q).toBe("EINVAL");
    }
    expect((await call(a, "GET", `/w/${ws}/versions?limit=5`)).status).toBe(200);
  });

  it('grants: expiresIn "never" and non-numeric expiries are refused, never silently one hour', async () => {
    const a = newKey();
    const ws = await createWs(a);
    for (const body of [{ expiresIn: "never" }, { expiresIn: "1h" }, { expires: "tomorrow" }, { expiresIn: -1 }, { expires: Date.now() + 60_000, expiresIn: 60 }]) {
      const r = await call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "r", ...body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(await errCode(r)).toBe("EINVAL");
    }
    expect((await json(call(a, "GET", `/w/${ws}/grants`))).grants).toEqual([]);
    const g = await json(call(a, "POST", `/w/${ws}/grants`, { prefix: "", rights: "r", expiresIn: 120 }));
    expect(g.expires).toBeGreaterThan(Date.now() + 100_000);
  });
});
