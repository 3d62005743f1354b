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
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
        test: {
          name: "workers",
          include: ["**/*.workers.test.ts"],
          exclude: ["**/node_modules/**"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
