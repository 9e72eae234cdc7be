import { expect, test } from "bun:test";
import { readByRecipient } from "../helpers/sealed.ts";
import { registeredNetwork } from "../helpers/simulated-network.ts";

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
