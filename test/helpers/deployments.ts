import {
  type ChatProcess,
  type ChatSession,
  type ServerHandle,
  TABLE_UPDATED,
  waitForTable,
} from "./process-driver.ts";

/**
 * Where a test's clients register: one server, or the nodes of a cluster, so the same
 * end-to-end cases run on both (issue #11: SPEC's cases with clients spread over nodes).
 */
export interface Deployment {
  readonly label: string;
  /** The server the client `name` registers at. */
  serverOf(name: string): ServerHandle;
  /**
   * Starts clients one after the other, each at its server, registered and shown its
   * first table, then waits until every one's table lists them all online.
   */
  startClients(names: readonly string[]): Promise<ChatProcess[]>;
}

export async function singleServer(chat: ChatSession): Promise<Deployment> {
  const server = await chat.startServer();
  return deployment(chat, "one server", () => server);
}

/**
 * Nodes of one cluster, sharing the Redis at `redisUrl`; the n-th client's name (in the
 * order they are first asked for) registers at node n modulo their number.
 */
export async function clusterNodes(
  chat: ChatSession,
  redisUrl: string,
  nodeNames: readonly string[],
): Promise<Deployment> {
  const nodes: ServerHandle[] = [];
  for (const node of nodeNames) {
    nodes.push(await chat.startServer({ args: ["--redis", redisUrl, "--node-name", node] }));
  }
  const assigned = new Map<string, ServerHandle>();
  return deployment(chat, `${nodes.length} nodes`, (name) => {
    let server = assigned.get(name);
    if (!server) {
      server = nodes[assigned.size % nodes.length];
      if (!server) throw new Error("a cluster needs at least one node");
      assigned.set(name, server);
    }
    return server;
  });
}

function deployment(
  chat: ChatSession,
  label: string,
  serverOf: (name: string) => ServerHandle,
): Deployment {
  return {
    label,
    serverOf,
    async startClients(names) {
      const clients: ChatProcess[] = [];
      for (const name of names) {
        const client = await chat.startClient(name, serverOf(name));
        await client.waitForLine(TABLE_UPDATED);
        clients.push(client);
      }
      const everyone = Object.fromEntries(names.map((name) => [name, "online" as const]));
      await Promise.all(clients.map((client) => waitForTable(client, everyone)));
      return clients;
    },
  };
}
