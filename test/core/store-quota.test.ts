import { expect, test } from "bun:test";
import type { ServerEffect } from "../../src/core/server-effects.ts";
import { createServerState, type ServerState } from "../../src/core/server-state.ts";
import { stepServer } from "../../src/core/step-server.ts";
import { encodeMessage, padRegistration } from "../../src/protocol/codec.ts";
import type { Address, Message } from "../../src/protocol/messages.ts";

const COOKIE = "c".repeat(32);
const x: Address = { ip: "127.0.0.1", port: 7100 };
const NOW = 1_764_000_000_000;

/** A server holding x online and three offline members, with room for two stored messages. */
function server(): { state: ServerState; token: string } {
  const token = "a".repeat(32);
  const offline = (name: string, port: number) => ({
    name,
    ip: "127.0.0.1",
    port,
    online: false,
    token: `${name.padEnd(32, "0")}`,
    lastSeen: NOW,
  });
  const state = createServerState(
    {
      clients: [
        { name: "x", ...x, online: true, token, lastSeen: NOW },
        offline("y", 7101),
        offline("z", 7102),
        offline("w", 7103),
      ],
      messages: [],
    },
    {
      newToken: () => "b".repeat(32),
      firstRequestId: 1,
      cookieFor: () => COOKIE,
      epoch: "0123456789abcdef",
      storeQuota: { messages: 2, textBytes: 1_000_000 },
    },
  );
  return { state, token };
}

/** x's request, with its commit reported as the shell does; x's answer. */
function ask(state: ServerState, request: Message): Message | undefined {
  const bytes = encodeMessage(request.type === "register" ? padRegistration(request) : request);
  const effects = stepServer(state, { kind: "datagram", from: x, bytes }, NOW);
  const commits = effects.flatMap((e) => (e.kind === "persist" ? [e.commit] : []));
  const released: ServerEffect[] =
    commits.length > 0 ? stepServer(state, { kind: "committed", commits }, NOW) : [];
  return [...effects, ...released]
    .flatMap((e): Message[] => (e.kind === "send" && e.to.port === x.port ? [e.message] : []))
    .find((m) => m.id === request.id && m.type !== "table");
}

test("saves beyond the store quota are refused store-full; a channel post says how many it could not keep", () => {
  const { state, token } = server();
  const save = (id: number, to: string) =>
    ask(state, { type: "save", id, token, to, text: `m${id}` });
  expect(save(1, "y")).toEqual({ type: "ack", id: 1 });
  expect(save(2, "z")).toEqual({ type: "ack", id: 2 });
  expect(save(3, "w")).toEqual({ type: "error", id: 3, code: "store-full" });
  expect(state.storeUse.messages).toBe(2);
  // All three offline members: none has room left.
  expect(ask(state, { type: "channel", id: 4, token, text: "to everyone" })).toEqual({
    type: "ack",
    id: 4,
    unstored: 3,
  });
  expect(state.storeUse.messages).toBe(2);
});
