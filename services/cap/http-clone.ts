// /cap/http's clone connections: N/ctl (the request), N/body (the request body streamed out, the
// response body streamed in), N/status (status and headers, waiting for them).
import { fsError, type FsError } from "../../runtime/errors.ts";
import type { Budget } from "../../runtime/namespace.ts";
import type { OpenFlags } from "../../runtime/types.ts";
import { handle, type Conn } from "./clone.ts";
import { netError, parseRequest, type HttpCap, type HttpRequest, type Sent } from "./http.ts";
import { Pipe, Pull } from "./pipe.ts";
import { MiB, jsonReply, parseJson } from "./reqreply.ts";
import type { Secrets } from "./secrets.ts";

export function httpConn(cap: HttpCap, id: number, failOf: (file: string) => (e: unknown) => FsError): Conn {
  const abort = new AbortController();
  let req: HttpRequest | null = null;
  let upload: Pipe | null = null;
  let answer: Promise<Sent> | null = null;
  let pull: ((n: number) => Promise<Uint8Array>) | null = null;
  let stream: Pull | null = null;
  const need = (file: string): HttpRequest => {
    if (!req) throw failOf(`${id}/${file}`)(fsError("EINVAL", `write the request to ${id}/ctl first`));
    return req;
  };
  /** Sends the request (with the upload stream, if the body is being written). */
  const begin = (r: HttpRequest): Promise<Sent> => {
    if (!answer) {
      // The time limit covers the answer's head; a body stream may then take as long as it takes.
      answer = cap.send(r, abort.signal, upload ? toStream(upload, cap.budget) : undefined);
      answer.then((s) => s.settled(), () => {});
    }
    return answer;
  };
  /** The answer: reading ends the upload, and sends the request if nothing did yet. */
  const start = (file: string): Promise<Sent> => {
    const r = need(file);
    upload?.end();
    return begin(r).catch((e) => { throw failOf(`${id}/${file}`)(e); });
  };
  const files: Conn["files"] = {
    ctl: (flags: OpenFlags) => {
      let at = 0;
      return handle({
      write: (data) => {
        if (req) throw failOf(`${id}/ctl`)(fsError("EINVAL", "one request per connection: read clone again for another"));
        try {
          req = parseRequest(parseJson(data, "ctl"), false);
        } catch (e) {
          throw failOf(`${id}/ctl`)(e);
        }
        return data.length;
      },
      // Reading ctl shows the request (no headers: they may name secrets), then EOF.
      read: flags.read ? (n) => {
        const text = new TextEncoder().encode(req ? JSON.stringify({ url: req.url, method: req.method }) + "\n" : "");
        const out = text.subarray(at, at + n);
        at += out.length;
        return out;
      } : undefined,
      });
    },
    status: () => {
      let text: Uint8Array | null = null;
      let at = 0;
      return handle({
        read: async (n) => {
          if (!text) {
            const { res, url } = await start("status");
            text = jsonReply(cap.head(res, url));
          }
          const out = text.subarray(at, at + n);
          at += out.length;
          return out;
        },
      });
    },
    body: (flags: OpenFlags) => {
      let wrote = false;
      return handle({
        write: flags.write ? (data) => {
          const r = need("body");
          const f = failOf(`${id}/body`);
          if (r.method === "GET" || r.method === "HEAD") throw f(fsError("EINVAL", `a ${r.method} request has no body`));
          if ((answer && !upload) || upload?.ended) throw f(fsError("EINVAL", "the request was sent: the body can no longer grow"));
          upload ??= new Pipe();
          wrote = true;
          upload.push(data.slice());
          // The request goes out with the first bytes, so the server reads while the agent writes.
          begin(r).catch(() => {});
          // Backpressure: past 1 MiB in flight, the write waits for the network to take it.
          return upload.buffered > MiB ? upload.below(MiB / 4).then(() => data.length) : data.length;
        } : undefined,
        read: flags.read ? async (n) => {
          if (!pull) {
            const { res } = await start("body");
            if (!res.body) return new Uint8Array(0);
            if (!pull) {
              stream = new Pull(res.body);
              pull = scrubbed(stream, cap.secrets);
            }
          }
          try {
            const b = await pull(n);
            cap.budget?.charge("bytes", b.length);
            if (!b.length) answer?.then((s) => s.finished(), () => {});
            return b;
          } catch (e) {
            throw failOf(`${id}/body`)(netError(e, false, 0, `${id}/body`));
          }
        } : undefined,
        close: () => {
          if (wrote) upload?.end();
        },
      });
    },
  };
  return { files, close: () => { stream?.cancel(); abort.abort(fsError("ECANCELED", "the connection was closed")); } };
}

/** Reads a body through the secrets scrubber, so a value the server echoes never reaches the agent. */
function scrubbed(pull: Pull, secrets: Secrets): (n: number) => Promise<Uint8Array> {
  if (!secrets.size) return async (n) => pull.read(n);
  const s = secrets.scrubber();
  let pending: Uint8Array = new Uint8Array(0);
  let done = false;
  return async (n) => {
    while (!pending.length && !done) {
      const b = await pull.read(Math.max(n, 1 << 16));
      if (!b.length) {
        done = true;
        pending = s.end();
      } else pending = s.push(b);
    }
    const out = pending.subarray(0, n);
    pending = pending.subarray(out.length);
    return out;
  };
}

/** The upload pipe as a request body stream, charging the byte budget. */
function toStream(p: Pipe, budget?: Budget): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const b = await p.read(1 << 16);
      if (!b.length) c.close();
      else {
        budget?.charge("bytes", b.length);
        c.enqueue(b);
      }
    },
  });
}
