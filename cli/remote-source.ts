// An edge workspace as a mount: http(s)://HOST[:PORT]/w/NAME, signed with the CLI's credential.
// A read-only mount never creates the workspace (a misspelled name is an error, not a new,
// empty workspace), and the mount is probed before the guest starts, so an unreachable edge or a
// refused key is one line on the terminal naming the mount, not an errno deep inside the guest.
import { isFsError } from "../runtime/errors.ts";
import { RemoteService } from "../services/remote.ts";
import { edgeCredential } from "./credentials.ts";
import type { FileService } from "../runtime/types.ts";
import type { Source } from "./sources.ts";
import { UsageError } from "./usage.ts";

const WS_PATH = /^\/w\/([A-Za-z0-9][A-Za-z0-9._-]{0,62})\/?$/;

export function parseWorkspaceUrl(source: string): { origin: string; name: string; url: string } {
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new UsageError(`${source}: not a URL (an edge workspace is http://HOST:PORT/w/NAME)`);
  }
  const m = WS_PATH.exec(u.pathname);
  if (!m || u.search || u.hash || u.username || u.password) {
    throw new UsageError(`${source}: an edge workspace is http://HOST:PORT/w/NAME (NAME: letters, digits, . _ -)`);
  }
  return { origin: u.origin, name: m[1]!, url: `${u.origin}/w/${m[1]}` };
}

export function remoteMount(source: string, opts: { readOnly: boolean }): Source {
  const { origin, name, url } = parseWorkspaceUrl(source);
  const cred = edgeCredential();
  const service = new RemoteService(url, { ...cred, readOnly: opts.readOnly, create: !opts.readOnly && !cred.token });
  return {
    service,
    remote: {
      url, name, origin,
      async probe(through) {
        // Is the edge there at all? (Fast: the service itself would retry for 30 s.)
        try {
          const r = await fetch(`${origin}/edge`, { signal: AbortSignal.timeout(5000) });
          await r.body?.cancel();
        } catch (e) {
          const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
          throw Object.assign(new Error(`the edge at ${origin} cannot be reached (${cause})`), { code: "ECONNREFUSED" });
        }
        try {
          if (!cred.token) await through.stat(""); // a token may be scoped below the root
        } catch (e) {
          if (isFsError(e, "ENOENT") && opts.readOnly) throw Object.assign(new Error(`ENOENT: no workspace "${name}" at ${origin} (a read-only mount does not create it)`), { code: "ENOENT" });
          throw e;
        }
      },
    },
  };
}
