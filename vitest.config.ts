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
            // edge caps: the key that seals workspace secrets (edge/workspace/seal.ts); tests only.
            miniflare: { bindings: { ADMIN_PUBKEYS: "baaa18906229500efad7c0a5dda12c0006008f51fe92262a0c3da6e75f437e28", SECRETS_KEY: "test-only-secrets-key-0123456789abcdef0123456789" } },
          }),
        ],
        test: {
          name: "workers",
          include: ["**/*.workers.test.ts"],
          exclude: ["**/node_modules/**"],
          // edge caps: real local HTTP, WebSocket and OpenAI-compatible servers the Worker reaches.
          globalSetup: ["./edge/dev/cap-servers.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
