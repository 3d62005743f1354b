// Node's DNS for the host check (hosts.ts): every address a name resolves to, as the OS resolver
// sees it (so /etc/hosts entries such as localhost count). Node only; the edge has no resolver
// and judges names by their spelling (Cloudflare's fetch cannot reach private addresses anyway).
import { lookup } from "node:dns/promises";
import type { Resolver } from "./hosts.ts";

export const nodeResolve: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
