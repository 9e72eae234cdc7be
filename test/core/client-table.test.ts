import { describe, expect, test } from "bun:test";
import {
  type ClientEffect,
  type ClientState,
  createClientState,
} from "../../src/core/client-state.ts";
import { stepClient } from "../../src/core/step-client.ts";
import { formatAddress, samePeer } from "../../src/protocol/address.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import type { Address, TableEntry } from "../../src/protocol/messages.ts";
import { notices } from "../../src/text/notices.ts";
import { agreementKeyOf, identityFor, testCrypto } from "../helpers/identities.ts";
import { sealedChat } from "../helpers/sealed.ts";

const NOW = Date.UTC(2025, 2, 14, 9, 26, 53);

/** A client that is registered and holds `table`, as if the server had pushed it. */
function onlineClient(name: string, table: TableEntry[], server = "127.0.0.1"): ClientState {
  const state = createClientState({
    name,
    server: { ip: server, port: 5000 },
    firstRequestId: 1,
    crypto: testCrypto,
    identity: identityFor(name),
  });
  state.phase = "online";
  state.token = "token";
  state.table = table;
  return state;
}

const shownBy = (effects: ClientEffect[]) =>
  effects.flatMap((effect) => (effect.kind === "show" ? [effect.text] : []));

describe("addresses", () => {
  test("IPv6 in brackets, IPv4-mapped as plain IPv4", () => {
    expect(formatAddress({ ip: "::1", port: 6020 })).toBe("[::1]:6020");
    expect(formatAddress({ ip: "::ffff:127.0.0.1", port: 6020 })).toBe("127.0.0.1:6020");
    expect(formatAddress({ ip: "127.0.0.1", port: 6020 })).toBe("127.0.0.1:6020");
  });

  test("the same peer in either family on loopback, never across hosts or ports", () => {
    const at = (ip: string, port = 6001): Address => ({ ip, port });
    expect(samePeer(at("::ffff:127.0.0.1"), at("127.0.0.1"))).toBe(true);
    expect(samePeer(at("::1"), at("::ffff:127.0.0.1"))).toBe(true);
    expect(samePeer(at("::1"), at("127.0.0.1", 6002))).toBe(false);
    expect(samePeer(at("::1"), at("10.0.0.1"))).toBe(false);
    expect(samePeer(at("2001:db8::1"), at("127.0.0.1"))).toBe(false);
  });
});

describe("direct messages between address families", () => {
  test("a message from a peer registered as ::1 that arrives from 127.0.0.1 is shown and acknowledged", () => {
    const y = onlineClient("y", [
      { name: "x", ip: "::1", port: 6001, online: true, ak: agreementKeyOf("x") },
      { name: "y", ip: "127.0.0.1", port: 6002, online: true, ak: agreementKeyOf("y") },
    ]);
    const from = { ip: "::ffff:127.0.0.1", port: 6001 };
    const bytes = encodeMessage(sealedChat({ id: 7, from: "x", to: "y", text: "over v4" }));
    const effects = stepClient(y, { kind: "datagram", from, bytes }, NOW);
    expect(shownBy(effects)).toEqual(["x: over v4"]);
    expect(effects).toContainEqual({
      kind: "send",
      to: from,
      message: { type: "ack", id: 7, mac: expect.any(String) },
    });
  });

  test("a message from the right port of another host is still dropped", () => {
    const y = onlineClient("y", [
      { name: "x", ip: "::1", port: 6001, online: true, ak: agreementKeyOf("x") },
      { name: "y", ip: "127.0.0.1", port: 6002, online: true, ak: agreementKeyOf("y") },
    ]);
    const bytes = encodeMessage(sealedChat({ id: 7, from: "x", to: "y", text: "forged" }));
    const from = { ip: "10.1.2.3", port: 6001 };
    expect(stepClient(y, { kind: "datagram", from, bytes }, NOW)).toEqual([]);
  });

  test("a peer on another family off loopback is refused with the reason, nothing sent", () => {
    const x = onlineClient(
      "x",
      [
        { name: "x", ip: "2001:db8::5", port: 6001, online: true, ak: agreementKeyOf("x") },
        { name: "y", ip: "192.0.2.7", port: 6002, online: true, ak: agreementKeyOf("y") },
      ],
      "2001:db8::1",
    );
    const effects = stepClient(x, { kind: "line", text: "send y hi" }, NOW);
    expect(effects).toEqual([
      { kind: "show", text: notices.otherAddressFamily("y", "IPv4", "IPv6") },
    ]);
  });
});

describe("list", () => {
  const table: TableEntry[] = [
    { name: "alice", ip: "127.0.0.1", port: 6001, online: true, ak: agreementKeyOf("alice") },
    { name: "Al", ip: "::1", port: 6020, online: false, ak: agreementKeyOf("Al") },
    { name: "bob", ip: "::ffff:127.0.0.1", port: 16002, online: true, ak: agreementKeyOf("bob") },
  ];

  test("aligned columns, IPv6 in brackets", () => {
    const x = onlineClient("bob", table);
    expect(shownBy(stepClient(x, { kind: "line", text: "list" }, NOW))).toEqual([
      "[Client table: 3 clients]",
      "  alice  127.0.0.1:6001   online",
      "  Al     [::1]:6020       offline",
      "  bob    127.0.0.1:16002  online",
    ]);
  });

  test("list <prefix> shows the names that start with it, whatever the case, and says how many", () => {
    const x = onlineClient("bob", table);
    expect(shownBy(stepClient(x, { kind: "line", text: "list aL" }, NOW))).toEqual([
      '[Client table: 2 of 3 clients with names starting "aL"]',
      "  alice  127.0.0.1:6001  online",
      "  Al     [::1]:6020      offline",
    ]);
    expect(shownBy(stepClient(x, { kind: "line", text: "showall z" }, NOW))).toEqual([
      '[Client table: 0 of 3 clients with names starting "z"]',
    ]);
  });

  test("works offline, saying the table is as it was", () => {
    const x = onlineClient("bob", table);
    x.phase = "offline";
    expect(shownBy(stepClient(x, { kind: "line", text: "list b" }, NOW))).toEqual([
      '[Client table: 1 of 3 clients with names starting "b", as it was when you went offline]',
      "  bob  127.0.0.1:16002  offline",
    ]);
  });

  test("10,000 entries: a prefix narrows them down and a long list ends with the count", () => {
    const big: TableEntry[] = Array.from({ length: 10_000 }, (_, index) => ({
      name: `user${index}`,
      ip: "127.0.0.1",
      port: 1024 + index,
      online: index % 2 === 0,
      ak: agreementKeyOf("user0"),
    }));
    const x = onlineClient("user0", big);
    const all = shownBy(stepClient(x, { kind: "line", text: "list" }, NOW));
    expect(all[0]).toBe("[Client table: 10,000 clients]");
    expect(all).toHaveLength(10_002);
    expect(all.at(-1)).toBe("[10,000 clients shown, 5,000 online]");
    expect(new Set(all.slice(1, -1).map((row) => row.length)).size).toBeLessThanOrEqual(2);
    const some = shownBy(stepClient(x, { kind: "line", text: "list USER999" }, NOW));
    expect(some).toEqual([
      '[Client table: 11 of 10,000 clients with names starting "USER999"]',
      "  user999   127.0.0.1:2023   offline",
      ...Array.from(
        { length: 10 },
        (_, digit) =>
          `  user999${digit}  127.0.0.1:${1024 + 9990 + digit}  ${digit % 2 === 0 ? "online" : "offline"}`,
      ),
    ]);
  });
});
