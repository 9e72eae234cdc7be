import { type CommandDef, defineCommand } from "citty";

export type Mode = "server" | "client";

export interface Commands {
  readonly root: CommandDef;
  readonly server: CommandDef;
  readonly client: CommandDef;
}

/**
 * The citty command tree. It declares no arguments: citty parses loosely
 * (unknown flags and extra words pass silently), so each mode's arguments are
 * validated by parse-args.ts from the raw list instead.
 */
export function createCommands(
  version: string,
  run: (mode: Mode, args: readonly string[]) => Promise<void>,
): Commands {
  const server = defineCommand({
    meta: { name: "server", description: "Run the server (chatapp -s <port>)" },
    run: ({ rawArgs }) => run("server", rawArgs),
  });
  const client = defineCommand({
    meta: {
      name: "client",
      description: "Run a client (chatapp -c <name> <server-ip> <server-port> <client-port>)",
    },
    run: ({ rawArgs }) => run("client", rawArgs),
  });
  const root = defineCommand({
    meta: { name: "chatapp", version, description: "Chat over UDP" },
    subCommands: { server, client },
  });
  return { root, server, client };
}
