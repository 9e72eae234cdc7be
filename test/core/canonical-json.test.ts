import { describe, expect, test } from "bun:test";
import { canonicalJson, macInput } from "../../src/core/session-crypto.ts";
import { encodeBase64url } from "../../src/crypto/base64url.ts";
import { nodeCryptoPort } from "../../src/crypto/node-crypto-port.ts";
import { seededRandom } from "../../src/io/seeded-random.ts";
import { type Message, PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { tableEntriesJson } from "../../src/protocol/table-entries-json.ts";

/** The definition, with no shortcut: keys sorted at every level, undefined fields left out. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const fields = value as Record<string, unknown>;
    const keys = Object.keys(fields)
      .filter((key) => fields[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(fields[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

describe("canonical JSON", () => {
  test("a table's entries travel, and are hashed, as arrays in a fixed order; a forgotten name as [name]", () => {
    const entry = { port: 1, online: true, name: "x", ip: "::1", ak: "k" };
    const withoutKey = { online: false, port: 2, name: "z", ip: "127.0.0.1" };
    expect(tableEntriesJson([entry, { gone: true, name: "y" }, withoutKey])).toBe(
      '[["x","::1",1,true,"k"],["y"],["z","127.0.0.1",2,false]]',
    );
  });

  test("objects out of order, nested, with undefined fields or numeric keys are sorted as defined", () => {
    const samples: unknown[] = [
      { name: "x", ak: "k", port: 1, ip: "::1", online: false },
      { b: 1, a: undefined },
      { 10: "a", 9: "b" },
      { a: 1, b: { d: 2, c: 3 } },
      [{ b: 1, a: 2 }, { a: 1 }],
      { "": 1, a: [1, "2", null] },
      { a: null, b: Number.NaN, c: -0 },
      {},
      [],
      JSON.parse('{"b":1,"__proto__":{"x":1}}'),
      JSON.parse('[{"__proto__":{"y":[1]},"a":2}]'),
    ];
    for (const sample of samples) expect(canonicalJson(sample)).toBe(reference(sample));
  });

  test("random flat and nested objects agree with the definition", () => {
    const random = seededRandom(8);
    const keys = ["ak", "ip", "name", "online", "port", "gone", "", "0", "12", "é", "Z"];
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const leaf = (): unknown =>
      pick([1, -0, 2.5, "text", "", true, false, null, undefined, Number.POSITIVE_INFINITY]);
    const object = (depth: number): Record<string, unknown> => {
      const fields: Record<string, unknown> = {};
      const count = Math.floor(random() * 6);
      for (let i = 0; i < count; i++) {
        fields[pick(keys)] = depth > 0 && random() < 0.2 ? object(depth - 1) : leaf();
      }
      return fields;
    };
    for (let i = 0; i < 2_000; i++) {
      const value = random() < 0.5 ? object(2) : [object(1), object(0)];
      expect(canonicalJson(value)).toBe(reference(value));
    }
  });

  test("a table without its entries (the decoder never makes one) is covered like any message, not thrown on", () => {
    const bare = { type: "table", id: 1, version: 2, extra: [1] } as unknown as Message;
    expect(new TextDecoder().decode(macInput(nodeCryptoPort, bare))).toBe(
      `{"extra":[1],"id":1,"type":"table","v":${PROTOCOL_VERSION},"version":2}`,
    );
  });

  test("a MAC covers the message's canonical JSON with v, without mac and pad, written field by field", () => {
    const random = seededRandom(9);
    const keys = [
      "id",
      "type",
      "v",
      "mac",
      "pad",
      "sid",
      "to",
      "text",
      "ref",
      "",
      "0",
      "__proto__",
    ];
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const value = (): unknown =>
      pick([
        1,
        -0,
        2.5,
        "text",
        "é\u0000",
        true,
        null,
        undefined,
        { b: 1, a: [2, { d: 1, c: 0 }] },
      ]);
    const decoder = new TextDecoder();
    for (let i = 0; i < 2_000; i++) {
      const message: Record<string, unknown> = JSON.parse("{}");
      for (let n = Math.floor(random() * 7); n > 0; n--) {
        Object.defineProperty(message, pick(keys), {
          value: value(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      const covered: Record<string, unknown> = JSON.parse("{}");
      if (!Object.hasOwn(message, "v")) covered.v = PROTOCOL_VERSION;
      for (const key of Object.keys(message)) {
        if (key === "mac" || key === "pad") continue;
        Object.defineProperty(covered, key, {
          value: message[key],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      const input = macInput(nodeCryptoPort, message as unknown as Message);
      expect(decoder.decode(input)).toBe(reference(covered));
    }
  });

  test("the MAC input of the messages that travel by the thousand, written directly, is the canonical form too", () => {
    const random = seededRandom(10);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const entries = [
      [{ ak: "k".repeat(43), ip: "::1", name: "x", online: true, port: 1 }],
      [
        { gone: true, name: "y" },
        { ip: "127.0.0.1", name: "z", online: false, port: 9 },
      ],
      [],
    ];
    const zeroKey = new Uint8Array(32);
    const encoder = new TextEncoder();
    // PROTOCOL.md: the digest of the entries' text as they travel, each [name, ip, port, online, ak?] or [name].
    const onWire = (entry: Record<string, unknown>) =>
      entry.gone === true
        ? [entry.name]
        : [entry.name, entry.ip, entry.port, entry.online, entry.ak].filter((f) => f !== undefined);
    const digestOf = (clients: readonly Record<string, unknown>[]) =>
      encodeBase64url(
        nodeCryptoPort.mac(zeroKey, encoder.encode(JSON.stringify(clients.map(onWire)))),
      );
    const decoder = new TextDecoder();
    for (let i = 0; i < 3_000; i++) {
      const type = pick(["table", "ack", "save", "channel", "channel-message", "probe", "error"]);
      const keysOf: Record<string, string[]> = {
        table: ["base", "clients", "id", "part", "parts", "version"],
        ack: ["have", "id", "unstored"],
        save: ["box", "id", "n", "ref", "sid", "to"],
        channel: ["id", "ref", "sid", "text"],
        "channel-message": ["from", "id", "ref", "text"],
        probe: ["id"],
        error: ["code", "id"],
      };
      const keys = [...(keysOf[type] ?? []), "v", "mac", "pad"];
      const message: Record<string, unknown> = { type };
      for (const key of keys) {
        if (key !== "clients" && random() < 0.3) continue;
        message[key] =
          key === "clients"
            ? pick(entries)
            : pick([
                0,
                7,
                2 ** 53 - 1,
                -0,
                1.5,
                undefined,
                4,
                "4",
                'é\u0000\u2028"',
                true,
                null,
                { a: 1 },
              ]);
      }
      if (random() < 0.1) message[pick(["extra", "", "sid"])] = pick([1, "x", { b: [2] }]);
      const covered: Record<string, unknown> = {};
      if (!Object.hasOwn(message, "v")) covered.v = PROTOCOL_VERSION;
      for (const [key, value] of Object.entries(message)) {
        if (key === "mac" || key === "pad") continue;
        covered[key] =
          type === "table" && key === "clients" && Array.isArray(value) ? digestOf(value) : value;
      }
      const input = macInput(nodeCryptoPort, message as unknown as Message);
      expect(decoder.decode(input)).toBe(reference(covered));
    }
  });
});
