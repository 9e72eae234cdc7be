import { expect, test } from "bun:test";
import { withMac } from "../../src/core/session-crypto.ts";
import { testCrypto } from "../helpers/identities.ts";
import { readByRecipient } from "../helpers/sealed.ts";
import { registeredNetwork, SERVER_ADDRESS } from "../helpers/simulated-network.ts";

test("saves beyond the store quota are refused store-full; a channel post says how many it could not keep", () => {
  const network = registeredNetwork(["x", "y", "z", "w"]);
  const x = network.client("x");
  for (const name of ["y", "z", "w"]) network.client(name).type(`dereg ${name}`);
  network.settle();
  // The server's --store-quota: room for two stored messages.
  const server = network.server as { storeQuota: { messages: number; textBytes: number } };
  server.storeQuota = { messages: 2, textBytes: 1_000_000 };
  const mark = x.shown().length;
  x.type("send y one");
  x.type("send z two");
  x.type("send w three");
  network.settle();
  expect(x.shownSince(mark)).toEqual([
    "[Messages received by the server and saved]",
    "[Messages received by the server and saved]",
    "[The server's message store is full; not saved.]",
  ]);
  expect(network.server.storeUse.messages).toBe(2);
  const postMark = x.shown().length;
  x.type("send_all to everyone");
  network.settle();
  // All three members are away, and none has room left.
  expect(x.shownSince(postMark)).toEqual([
    "[Message received by Server.]",
    "[The server could not keep the message for 3 offline members (mailbox or store full).]",
  ]);
  expect(network.server.storeUse.messages).toBe(2);
  expect(network.store.load().messages.map(readByRecipient)).toEqual(["one", "two"]);
});

test("a retransmitted post whose ack says how many could not be kept gets that same ack each time", () => {
  const network = registeredNetwork(["x", "y", "z"]);
  const x = network.client("x");
  for (const name of ["y", "z"]) network.client(name).type(`dereg ${name}`);
  network.settle();
  const server = network.server as { storeQuota: { messages: number; textBytes: number } };
  server.storeQuota = { messages: 1, textBytes: 1_000_000 };
  const key = x.state.sessionKey;
  if (!key) throw new Error("x has no session");
  const post = withMac(testCrypto, key, {
    type: "channel",
    id: 91,
    sid: x.state.token ?? "",
    text: "for whoever has room",
  });
  const sentMark = network.sent.length;
  for (let copy = 0; copy < 3; copy++) network.inject(x.address, SERVER_ADDRESS, post);
  network.settle();
  const ack = withMac(testCrypto, key, { type: "ack", id: 91, unstored: 1 });
  const acks = network.sent.slice(sentMark).filter((d) => d.message.type === "ack");
  expect(acks.map((d) => d.message)).toEqual([ack, ack, ack]);
  expect(network.server.storeUse.messages).toBe(1);
});
