// What edge/dev/cap-servers.ts (the workers project's globalSetup) provides to the tests.
export {};

declare module "vitest" {
  export interface ProvidedContext {
    capServers: { http: string; ws: string; openai: string };
  }
}
