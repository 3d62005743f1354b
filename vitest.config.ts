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
            // planning: the test servers are on the loopback (edge/dev/test-servers.ts); retries quick.
            miniflare: { bindings: {
              ADMIN_PUBKEYS: "baaa18906229500efad7c0a5dda12c0006008f51fe92262a0c3da6e75f437e28",
              ALLOW_PRIVATE_HOSTS: "127.0.0.1", WEBHOOK_RETRY_MS: "300",
            } },
          }),
        ],
        test: {
          name: "workers",
          include: ["**/*.workers.test.ts"],
          globalSetup: ["./edge/dev/test-servers.ts"],
          exclude: ["**/node_modules/**"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
