// The OANIX Worker. The edge issue grows this into the Hono app with the workspace and relay
// Durable Objects; for now it answers who it is.
export default {
  async fetch(): Promise<Response> {
    return Response.json({ name: "oanix", version: "0.1.0" });
  },
};
