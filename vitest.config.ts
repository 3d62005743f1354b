import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";

// Two projects: Node for most suites, and workerd (through the Cloudflare test plugin) for the
// suites named `*.workers.test.ts`, which prove the runtime and the edge run inside the Workers runtime.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["{runtime,services,agents,cli,test}/**/*.test.ts"],
          exclude: ["**/*.workers.test.ts", "**/node_modules/**"],
          testTimeout: 30_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // relay: the NIP-86 admin of the tests (secret key "7e57ad31" × 8, in relay/nip86.workers.test.ts).
            // edge providers (edge/provider/provider.workers.test.ts): the secret their keys derive from, and one
            // provider configured as wrangler.toml would, on a kind no other suite uses.
            miniflare: {
              bindings: {
                ADMIN_PUBKEYS: "baaa18906229500efad7c0a5dda12c0006008f51fe92262a0c3da6e75f437e28",
                PROVIDER_KEY: "5eed".repeat(16),
                // edge caps: the key that seals workspace secrets (edge/workspace/seal.ts); tests only.
                SECRETS_KEY: "test-only-secrets-key-0123456789abcdef0123456789",
                // planning: the test servers are on the loopback (edge/dev/test-servers.ts); retries quick.
                ALLOW_PRIVATE_HOSTS: "127.0.0.1",
                WEBHOOK_RETRY_MS: "300",
                EDGE_PROVIDERS: JSON.stringify([{ name: "cfg-count", kind: 5951, program: "jobcount", workspace: "edge-provider-cfg" }]),
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["**/*.workers.test.ts"],
          exclude: ["**/node_modules/**"],
          // real local servers the Worker reaches: HTTP, WebSocket and OpenAI-compatible ones for the
          // edge caps; a webhook receiver and a scripted planning model for planning runs.
          globalSetup: ["./edge/dev/cap-servers.ts", "./edge/dev/test-servers.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
