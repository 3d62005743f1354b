// The workspace Durable Object: one file tree per workspace, in the object's SQLite storage.
// Each concern is one file owning its tables (schema.ts runs their migrations):
//   meta.ts        name, owner, counters          principals.ts  nonces, sessions
//   grants.ts      capability grants              tree.ts        the live tree (nodes)
//   pieces.ts      small pieces, read segments    history.ts     versions, history, snapshots
//   ops.ts         the batch operations           audit.ts       the audit outbox (to D1)
//   tasks.ts       task files (KV copies)         logs.ts        log streams (R2 segments, tails)
//   registry.ts    agent id → mounts          caps.ts        cap policy, agent identity, secrets
//   secrets.ts     sealed secrets (seal.ts)
// This class is the RPC surface: exactly its public methods. Each authenticates and authorises
// through #authorized (the one rule: the owner may do anything, anyone else what a live grant
// covers), then calls one concern. Every method answers a Reply and never throws across RPC.
import { DurableObject } from "cloudflare:workers";
import { FsError } from "../../runtime/errors.ts";
import { NAME_RE, toWireError, type WireOp, type WireStat } from "../../services/remote-wire.ts";
import { AuthError, allowed, actorOf, type Cred, type Principal, type Grant } from "../auth.ts";
import type { Env, Reply } from "../env.ts";
import type { Budgets, CapPolicy, RunCaps } from "../caps/policy.ts";
import { Alarm } from "./alarm.ts";
import { Caps, type CapsMaterial, type CapsView } from "./caps.ts";
import { SecretStore, type SecretInfo } from "./secrets.ts";
import { Answers } from "./answers.ts";
import { AuditOutbox } from "./audit.ts";
import { Grants } from "./grants.ts";
import { History, type PastNode } from "./history.ts";
import { Logs } from "./logs.ts";
import { Meta } from "./meta.ts";
import { Ops, accessOf, MAX_ANSWER_BYTES, type Access, type DoResult, type OpResult, type RunContext } from "./ops.ts";
import { Pieces, type Part, type Seg } from "./pieces.ts";
import { Principals } from "./principals.ts";
import { Registry, registryKey } from "./registry.ts";
import { errorReply, fail, nowNs, replyOf } from "./reply.ts";
import { pathOf } from "./names.ts";
import { migrate } from "./schema.ts";
import { Runs } from "./runs.ts";
import { Staging } from "./staging.ts";
import { Tasks, taskKey } from "./tasks.ts";
import { Tree, nodeRow } from "./tree.ts";

export type { Access, DoResult, Part, Seg, CapsMaterial, CapsView };
export { taskKey } from "./tasks.ts";
export { errorReply } from "./reply.ts";

/** What a method needs: accesses, or the owner. */
type Need = Access[] | "owner";

/** A fork's payload: the tree as of a version and the inline pieces it refers to. */
export interface TreeExport { nodes: PastNode[]; pieces: Array<[string, ArrayBuffer]>; version: number; name: string }

export class Workspace extends DurableObject<Env> {
  readonly #meta: Meta;
  readonly #grants: Grants;
  readonly #principals: Principals;
  readonly #audit: AuditOutbox;
  readonly #tree: Tree;
  readonly #pieces: Pieces;
  readonly #history: History;
  readonly #ops: Ops;
  readonly #tasks: Tasks;
  readonly #logs: Logs;
  readonly #registry: Registry;
  readonly #staging: Staging;
  readonly #answers: Answers;
  readonly #runs: Runs;
  readonly #caps: Caps;
  readonly #alarm: Alarm;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage);
    const sql = ctx.storage.sql;
    this.#meta = new Meta(sql);
    this.#grants = new Grants(sql);
    this.#principals = new Principals(sql, this.#meta, this.#grants);
    this.#alarm = new Alarm(ctx.storage);
    const arm = () => this.#alarm.arm();
    this.#audit = new AuditOutbox(sql, this.#meta, env.DB, arm);
    this.#tree = new Tree(sql);
    this.#pieces = new Pieces(sql);
    this.#history = new History(sql, this.#meta, this.#audit);
    this.#ops = new Ops(this.#tree, this.#pieces, this.#history, this.#meta);
    this.#tasks = new Tasks(sql, this.#meta, this.#history);
    this.#logs = new Logs(ctx.storage, this.#meta, env.BLOBS, arm);
    this.#registry = new Registry(this.#meta, this.#audit);
    this.#staging = new Staging(sql, env.BLOBS);
    this.#answers = new Answers(sql);
    this.#runs = new Runs(sql);
    this.#caps = new Caps(ctx.storage, this.#meta, this.#audit, new SecretStore(sql), env.SECRETS_KEY);
    for (const c of [this.#audit, this.#logs, this.#staging]) this.#alarm.add(() => c.due());
  }

  // ---------------------------------------------------------------- who, and the workspace itself

  /** Authenticate and authorise in one step (the Worker uses this before staging big bodies). */
  authenticate(cred: Cred, access: Access[]): Reply<Principal> {
    return replyOf(() => this.#authorized(cred, access));
  }

  /** The first key to create a workspace owns it; creating it again as its owner is a no-op. */
  create(cred: Cred, name: string): Reply<{ created: boolean; owner: string }> {
    return replyOf(() => {
      if (cred.type !== "key") throw new AuthError(403, "only a key (NIP-98) can create a workspace");
      if (!NAME_RE.test(name)) fail("EINVAL", "bad workspace name");
      this.#principals.of(cred);
      const owner = this.#meta.owner;
      if (owner && owner !== cred.pubkey) throw new AuthError(403, "workspace is owned by another key");
      if (owner) return { created: false, owner };
      this.ctx.storage.transactionSync(() => this.#init(name, cred.pubkey));
      return { created: true, owner: cred.pubkey };
    });
  }

  info(cred: Cred): Reply<Record<string, unknown>> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      const u = this.#tree.usage();
      return {
        name: this.#meta.name, owner: this.#meta.owner, version: this.#meta.version, created: this.#meta.get("created"),
        files: u.files, bytes: u.bytes, forkedFrom: this.#meta.get("forked_from"),
      };
    });
  }

  /**
   * Trades one NIP-98 request for a session token (a bearer capability that stands for the key,
   * with the key's current rights, for SESSION_MS), so a client signs once, not per request.
   */
  session(cred: Cred): Reply<{ token: string; expires: number; pubkey: string }> {
    return replyOf(() => {
      if (cred.type !== "key") throw new AuthError(403, "a session is opened with a key (NIP-98)");
      const p = this.#authorized(cred, []);
      if (p.kind === "key" && !p.grants.length) throw new AuthError(403, "this key has no rights in this workspace");
      return this.#principals.openSession(cred.pubkey);
    });
  }

  /** Records a NIP-98 nonce only (routes that belong to a key, not a workspace: `GET /w`). */
  touch(cred: Cred): Reply<string> {
    return replyOf(() => this.#keyOf(this.#principals.of(cred)));
  }

  // ---------------------------------------------------------------- files

  /**
   * Runs a batch: operations in order, each atomic on its own (or all-or-nothing with `atomic`).
   * Every op is authorised before any runs, so a forbidden batch changes nothing; the whole batch
   * runs in one turn of this object, so no other request interleaves with it.
   */
  batch(cred: Cred, ops: WireOp[], parts: Part[], atomic = false, rid?: string): Reply<{ results: DoResult[] }> {
    return replyOf(() => {
      const p = this.#authorized(cred, ops.flatMap(accessOf));
      const actor = actorOf(p);
      const seen = rid === undefined ? null : this.#answers.get(actor, rid, ops, atomic);
      if (seen) return { results: seen.map((r) => this.#withSegs(r)) };
      const ctx: RunContext = { actor, parts, authorize: (a) => this.#check(p, a), budget: { left: MAX_ANSWER_BYTES }, atomic };
      const run = (o: WireOp): OpResult => this.#ops.run(o, ctx);
      // Each op is one transaction (a failing op leaves nothing half done), or one for them all,
      // where a file's writes and truncates gather into one version (ops.ts, change.ts).
      const results = atomic
        ? this.#atomically(ops, run, () => this.#ops.settle(ctx))
        : ops.map((o) => attempt(() => this.ctx.storage.transactionSync(() => run(o))));
      if (rid !== undefined) this.#answers.put(actor, rid, ops, atomic, results);
      return { results: results.map((r) => this.#withSegs(r)) };
    });
  }

  /** Replaces a file's whole content with one staged piece (PUT): atomic, one version. */
  putFile(cred: Cred, rawPath: string, part: Part, parents: boolean): Reply<WireStat> {
    return replyOf(() => {
      const path = pathOf(rawPath);
      const p = this.#authorized(cred, [{ path, write: true }]);
      return this.ctx.storage.transactionSync(() => {
        const stat = this.#ops.put(actorOf(p), path, part, parents, (a) => this.#check(p, a));
        if (!(part instanceof Uint8Array)) this.#staging.committed(part.r2);
        return stat;
      });
    });
  }

  /** Segments of a file for a streamed GET (a window at a time, so no RPC carries a huge body). */
  readSegs(cred: Cred, rawPath: string, offset: number, length: number, version?: number): Reply<{ stat: WireStat; segs: Seg[] }> {
    return replyOf(() => {
      const path = pathOf(rawPath);
      this.#authorized(cred, [{ path, write: false }]);
      return this.#ops.segments(path, offset, length, version);
    });
  }

  // ---------------------------------------------------------------- versions, snapshots, fork

  versions(cred: Cred, rawPath: string | undefined, limit = 100): Reply<{ version: number; entries: unknown[] }> {
    return replyOf(() => {
      const path = rawPath === undefined ? undefined : pathOf(rawPath);
      this.#authorized(cred, [{ path: path ?? "", write: false }]);
      return this.#history.log(path, Math.max(1, Math.min(1000, limit)));
    });
  }

  snapshot(cred: Cred, name: string): Reply<{ name: string; version: number }> {
    return replyOf(() => {
      const p = this.#authorized(cred, [{ path: "", write: true }]);
      return this.ctx.storage.transactionSync(() => this.#history.snapshot(name, actorOf(p)));
    });
  }

  snapshots(cred: Cred): Reply<Array<{ name: string; version: number; time: string }>> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      return this.#history.snapshots();
    });
  }

  /** Resolves `?snapshot=` for a read of `path`; rights are checked before the lookup. */
  snapshotVersion(cred: Cred, name: string, path = ""): Reply<number | null> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: pathOf(path), write: false }]);
      return this.#history.snapshotVersion(name);
    });
  }

  /** The tree as of a version, with its inline pieces, for a fork. R2 pieces are shared by key. */
  exportTree(cred: Cred, version?: number): Reply<TreeExport> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      const v = version ?? this.#meta.version;
      const nodes = this.#history.treeAt(v);
      return { nodes, pieces: this.#pieces.export(nodes.map((n) => n.extents)), version: v, name: this.#meta.name };
    });
  }

  /** Creates this workspace as a fork: owner is the forking key; one version holds the whole tree. */
  importTree(cred: Cred, name: string, from: string, tree: Pick<TreeExport, "nodes" | "pieces">): Reply<{ version: number }> {
    return replyOf(() => {
      if (cred.type !== "internal" || cred.principal.kind === "token") throw new AuthError(403, "forks are made by keys");
      if (this.#meta.owner) fail("EEXIST", `workspace ${name} exists`);
      const owner = cred.principal.pubkey;
      return this.ctx.storage.transactionSync(() => {
        this.#init(name, owner);
        this.#meta.set("forked_from", from);
        this.#pieces.import(tree.pieces);
        const v = this.#meta.nextVersion();
        const t = nowNs();
        for (const n of tree.nodes) {
          const row = nodeRow(n.path, {
            type: n.type as "file" | "dir", ino: n.ino, size: n.size, extents: n.extents, atime: n.mtime, mtime: n.mtime, ctime: t, version: v,
          });
          this.#tree.put(row);
          this.#history.keep(n.path, v, row);
        }
        this.#meta.set("ino", tree.nodes.reduce((m, n) => Math.max(m, n.ino), 1));
        this.#history.commit(v, `key:${owner}`, "fork", "", { from, files: tree.nodes.length });
        return { version: v };
      });
    });
  }

  // ---------------------------------------------------------------- grants

  grant(cred: Cred, g: { prefix: string; write: boolean; expires: number; pubkey?: string }): Reply<Grant & { token?: string }> {
    return replyOf(() => {
      const p = this.#authorized(cred, "owner");
      const prefix = pathOf(g.prefix);
      return this.ctx.storage.transactionSync(() => {
        const out = this.#grants.add({ ...g, prefix });
        this.#audit.append(actorOf(p), "grant", { id: out.id, prefix, write: g.write, expires: g.expires, ...(g.pubkey ? { pubkey: g.pubkey } : {}) });
        return out;
      });
    });
  }

  grants(cred: Cred): Reply<Array<Grant & { revoked: boolean }>> {
    return replyOf(() => {
      this.#authorized(cred, "owner");
      return this.#grants.list();
    });
  }

  revoke(cred: Cred, id: string): Reply<{ revoked: string }> {
    return replyOf(() => {
      const p = this.#authorized(cred, "owner");
      this.ctx.storage.transactionSync(() => {
        this.#grants.revoke(id);
        this.#audit.append(actorOf(p), "revoke", { id });
      });
      return { revoked: id };
    });
  }

  // ---------------------------------------------------------------- registry, tasks

  /** Namespace registry entry (this object is `@agent:<id>`): the first key to register owns it. */
  async registryPut(cred: Cred, agent: string, json: string): Promise<Reply<{ agent: string; owner: string }>> {
    const r = replyOf(() => {
      const key = this.#keyOf(this.#principals.of(cred));
      const owner = this.#meta.owner;
      if (owner && owner !== key) throw new AuthError(403, "agent id is registered by another key");
      this.ctx.storage.transactionSync(() => {
        if (!owner) this.#init("@agent:" + agent, key);
        this.#registry.put(`key:${key}`, agent, json);
      });
      return { agent, owner: key };
    });
    if (r.ok) await this.env.KV.put(registryKey(agent), json);
    return r;
  }

  async taskPut(cred: Cred, id: string, file: string, data: Uint8Array): Promise<Reply<{ version: number }>> {
    const r = replyOf(() => {
      const p = this.#authorized(cred, [{ path: "", write: true }]);
      return this.ctx.storage.transactionSync(() => this.#tasks.put(actorOf(p), id, file, data));
    });
    // Write through: the KV copy is for fast reads; this object stays the authority.
    if (r.ok) await this.env.KV.put(taskKey(this.#meta.name, id, file), data);
    return r;
  }

  taskGet(cred: Cred, id: string, file: string): Reply<Uint8Array | null> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      return this.#tasks.get(id, file);
    });
  }

  // ---------------------------------------------------------------- logs

  async logAppend(cred: Cred, stream: string, data: Uint8Array): Promise<Reply<{ length: number }>> {
    const r = replyOf(() => this.#authorized(cred, [{ path: "", write: true }]));
    if (!r.ok) return r;
    try {
      return { ok: true, value: await this.#logs.append(stream, data) };
    } catch (e) {
      return errorReply(e);
    }
  }

  /** Log bytes from `from` (up to `max`) as segments; the Worker resolves R2 ranges. */
  logRead(cred: Cred, stream: string, from: number, max: number): Reply<{ length: number; segs: Seg[] }> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      return this.#logs.read(stream, from, max);
    });
  }

  /** A live tail: the backlog from `from`, then every append as it happens, in order. */
  follow(cred: Cred, stream: string, from: number): Reply<ReadableStream<Uint8Array>> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: false }]);
      return this.#logs.follow(stream, from);
    });
  }

  // ---------------------------------------------------------------- edge runs

  /** Takes one of this workspace's run slots for `job` (EAGAIN when all are taken; `waiter` waits in line). */
  runAdmit(cred: Cred, job: string, waiter?: string): Reply<null> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: true }]);
      this.#runs.admit(job, waiter);
      return null;
    });
  }

  /** Gives a slot back; answers the waiters to wake. */
  runRelease(cred: Cred, job: string): Reply<string[]> {
    return replyOf(() => {
      this.#authorized(cred, [{ path: "", write: true }]);
      return this.#runs.release(job);
    });
  }

  // ---------------------------------------------------------------- capabilities (caps.ts, edge/caps/)

  capsGet(cred: Cred): Reply<CapsView> {
    return replyOf(() => (this.#authorized(cred, "owner"), this.#caps.view()));
  }

  capsPut(cred: Cred, policy: CapPolicy): Promise<Reply<CapsView>> {
    return replyAsync(() => this.#caps.setPolicy(actorOf(this.#authorized(cred, "owner")), policy));
  }

  secretPut(cred: Cred, name: string, value: string, hosts: string[]): Promise<Reply<SecretInfo>> {
    return replyAsync(() => this.#caps.putSecret(actorOf(this.#authorized(cred, "owner")), name, value, hosts));
  }

  secretList(cred: Cred): Reply<SecretInfo[]> {
    return replyOf(() => (this.#authorized(cred, "owner"), this.#caps.listSecrets()));
  }

  secretDelete(cred: Cred, name: string): Reply<{ deleted: string }> {
    return replyOf(() => (this.#caps.deleteSecret(actorOf(this.#authorized(cred, "owner")), name), { deleted: name }));
  }

  /** A run's caps checked against the policy before its job exists: the budgets it gets, or EACCES. */
  capsAdmit(cred: Cred, caps: RunCaps, budgets: Budgets): Reply<Budgets> {
    return replyOf(() => (this.#authorized(cred, [{ path: "", write: true }]), this.#caps.admit(caps, budgets)));
  }

  /** For the edge runner only (an internal credential): secrets and the agents' key, opened for one run. */
  capsOpen(cred: Cred, caps: RunCaps, budgets: Budgets): Promise<Reply<CapsMaterial>> {
    return replyAsync(async () => {
      if (cred.type !== "internal") throw new AuthError(403, "capabilities are opened by the edge runner only");
      this.#authorized(cred, [{ path: "", write: true }]);
      return this.#caps.open(caps, budgets);
    });
  }

  /** For the edge provider only (an internal credential): one secret opened (its wallet connection). */
  secretOpen(cred: Cred, name: string): Promise<Reply<{ value: string; hosts: string[] }>> {
    return replyAsync(async () => {
      if (cred.type !== "internal") throw new AuthError(403, "secrets are opened by the edge only");
      this.#authorized(cred, [{ path: "", write: true }]);
      return this.#caps.openSecret(name);
    });
  }

  // ---------------------------------------------------------------- audit, alarm

  async auditHead(cred: Cred): Promise<Reply<{ seq: number; head: string; name: string }>> {
    const r = replyOf(() => this.#authorized(cred, [{ path: "", write: false }]));
    if (!r.ok) return r;
    const h = await this.#audit.flush();
    return { ok: true, value: { ...h, name: this.#meta.name } };
  }

  /**
   * An entry in this workspace's audit chain from a service acting in it (a planning run's events),
   * by a principal with write access to `rawPath`, the subject. `action` is a short dotted name.
   */
  auditAppend(cred: Cred, rawPath: string, action: string, detail: unknown): Reply<{ seq: number }> {
    return replyOf(() => {
      const path = pathOf(rawPath);
      const p = this.#authorized(cred, [{ path, write: true }]);
      if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(action)) fail("EINVAL", `audit action "${action}": a short lower-case name`);
      this.ctx.storage.transactionSync(() => this.#audit.append(actorOf(p), action, { path, ...(detail as object) }));
      return { seq: this.#audit.head.seq };
    });
  }

  /** Records an R2 upload a PUT is staging, so a killed PUT's pieces are collected. */
  stageBegin(cred: Cred, key: string, uploadId: string | null): Reply<null> {
    return replyOf(() => {
      this.#authorized(cred, []);
      this.#staging.begin(key, uploadId);
      this.#alarm.arm();
      return null;
    });
  }

  override async alarm(): Promise<void> {
    await this.#audit.flush();
    await this.#logs.flush();
    await this.#staging.sweep();
    this.#alarm.arm();
  }

  // ---------------------------------------------------------------- private

  /** Authenticates `cred` and checks `need`: the one authorisation rule of this workspace. */
  #authorized(cred: Cred, need: Need): Principal {
    const p = this.#principals.of(cred);
    if (!this.#meta.owner) throw new FsError("ENOENT", "no such workspace");
    if (need === "owner") {
      if (p.kind !== "owner") throw new AuthError(403, `only the owner of workspace ${this.#meta.name} (key ${this.#meta.owner}) manages its grants`);
      return p;
    }
    for (const a of need) this.#check(p, a);
    return p;
  }

  /** The rule: the owner may do anything; anyone else what a live grant covers. */
  #check(p: Principal, a: Access): void {
    if (allowed(p, a.path, a.write)) return;
    throw new AuthError(403, `${a.write ? "write" : "read"} access to /${a.path} not granted: workspace ${this.#meta.name} belongs to key ${this.#meta.owner}; ask its owner for a grant (oanix ws grant)`);
  }

  /** The key behind a principal (tokens are refused: the action belongs to a key). */
  #keyOf(p: Principal): string {
    if (p.kind === "token") throw new AuthError(403, "a key is needed");
    return p.pubkey;
  }

  #init(name: string, owner: string): void {
    const t = nowNs();
    this.#meta.set("name", name);
    this.#meta.set("owner", owner);
    this.#meta.set("created", Date.now());
    this.#meta.set("version", 0);
    this.#meta.set("ino", 1);
    const root = nodeRow("", { type: "dir", ino: 1, size: 0, extents: "[]", atime: t, mtime: t, ctime: t, version: 0 });
    if (!this.#tree.node("")) this.#tree.put(root);
    this.#history.keep("", 0, this.#tree.node(""));
    this.#audit.append(`key:${owner}`, "create", { owner });
  }

  /** Read extents resolved to segments for the Worker. */
  #withSegs(r: OpResult): DoResult {
    if (!r.ok || !r.ext) return r;
    const { ext, ...rest } = r;
    return { ...rest, segs: this.#pieces.segs(ext) };
  }

  /** All or nothing: the failing op answers its error, every other ECANCELED. `finish` runs last, inside. */
  #atomically(ops: WireOp[], run: (o: WireOp) => OpResult, finish: () => void): OpResult[] {
    const results: OpResult[] = [];
    let failed = -1;
    try {
      this.ctx.storage.transactionSync(() => {
        for (const o of ops) {
          const r = attempt(() => run(o));
          results.push(r);
          if (!r.ok) {
            failed = results.length - 1;
            throw new FsError("ECANCELED", "batch rolled back");
          }
        }
        finish();
      });
    } catch (e) {
      if (failed < 0) throw e;
      return ops.map((_, i) => i === failed ? results[i]! : { ok: false as const, error: { code: "ECANCELED", message: "ECANCELED: atomic batch rolled back" } });
    }
    return results;
  }
}

/** replyOf for async work (WebCrypto): the value, or the error as data. */
async function replyAsync<T>(fn: () => Promise<T>): Promise<Reply<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return errorReply(e);
  }
}

/** One op's answer: its result, or its error as data. */
function attempt(fn: () => OpResult): OpResult {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof FsError)) console.error("workspace op failed", e);
    return { ok: false, error: toWireError(e) };
  }
}
