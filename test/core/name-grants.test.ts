import { expect, test } from "bun:test";
import type { ServerEffect } from "../../src/core/server-effects.ts";
import { createServerState, type ServerState } from "../../src/core/server-state.ts";
import { stepServer } from "../../src/core/step-server.ts";
import { NAME_GRANT_PERIOD_MS, NAMES_PER_ADDRESS } from "../../src/core/timing.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import type { Address, Message } from "../../src/protocol/messages.ts";
import { newKeyPairs, signedRegistration, testCrypto } from "../helpers/identities.ts";

const COOKIE = "c".repeat(32);
const flooder: Address = { ip: "127.0.0.1", port: 7000 };
const honest: Address = { ip: "127.0.0.1", port: 7001 };

function server(): ServerState {
  let token = 0;
  return createServerState(
    { clients: [], messages: [] },
    {
      crypto: testCrypto,
      keys: newKeyPairs(),
      newToken: () => (token++).toString(16).padStart(32, "0"),
      firstRequestId: 1,
      cookieFor: () => COOKIE,
      epoch: "0123456789abcdef",
    },
  );
}

/** One registration with a valid cookie; the commit is reported at once, as the shell does. */
function register(state: ServerState, from: Address, name: string, id: number, now: number) {
  const bytes = encodeMessage(signedRegistration(state, { name, id, cookie: COOKIE }));
  const effects = stepServer(state, { kind: "datagram", from, bytes }, now);
  const commits = effects.flatMap((e) => (e.kind === "persist" ? [e.commit] : []));
  const released: ServerEffect[] =
    commits.length > 0 ? stepServer(state, { kind: "committed", commits }, now) : [];
  return [...effects, ...released]
    .flatMap((e): Message[] => (e.kind === "send" && e.to.port === from.port ? [e.message] : []))
    .find((m) => m.id === id);
}

test("one address takes a few new names a minute; the next is told to slow down, others are not", () => {
  const state = server();
  for (let i = 0; i < NAMES_PER_ADDRESS; i++) {
    expect(register(state, flooder, `flood${i}`, i + 1, 1_000)?.type).toBe("registered");
  }
  expect(register(state, flooder, "flood-more", 99, 1_000)).toEqual({
    type: "error",
    id: 99,
    code: "slow-down",
  });
  expect(state.clients.has("flood-more")).toBe(false);
  // Someone else is not held back by the flooder.
  expect(register(state, honest, "alice", 1, 1_000)?.type).toBe("registered");
  // Coming back under one's own name from the same address is no new name.
  expect(register(state, flooder, `flood${NAMES_PER_ADDRESS - 1}`, 100, 2_000)?.type).toBe(
    "registered",
  );
  // A period later the address may take new names again.
  expect(register(state, flooder, "flood-later", 101, 1_000 + NAME_GRANT_PERIOD_MS)?.type).toBe(
    "registered",
  );
});
