import { describe, expect, test } from "bun:test";
import type { KeyPairs } from "../../src/core/session-crypto.ts";
import { publicKeyText, withMac } from "../../src/core/session-crypto.ts";
import { decodeBase64url } from "../../src/crypto/base64url.ts";
import type { DeliveredMessage } from "../../src/protocol/messages.ts";
import { notices } from "../../src/text/notices.ts";
import { formatTimestamp } from "../../src/text/timestamp.ts";
import { derivedKeyPairs, identityFor, testCrypto } from "../helpers/identities.ts";
import { sealedBy } from "../helpers/sealed.ts";
import {
  registeredNetwork,
  SERVER_ADDRESS,
  SERVER_LABEL,
  type SimClient,
  type SimulatedNetwork,
  START_TIME,
} from "../helpers/simulated-network.ts";

const y1Key = publicKeyText(identityFor("y").agreement);
const y2Identity = derivedKeyPairs("y's second identity");
const y2Key = publicKeyText(y2Identity.agreement);

function fingerprint(key: string): string {
  const bytes = decodeBase64url(key);
  if (!bytes) throw new Error(`not a key: ${key}`);
  return testCrypto.fingerprint(bytes);
}

const WARNING = notices.peerKeyChanged("y", fingerprint(y1Key), fingerprint(y2Key));

/**
 * x and y registered; y's process ends, the operator releases the name y (as
 * `chatapp --release-name y` does to the data directory of the stopped server), and y
 * comes back with a new identity: x's table now shows y with another key.
 */
function yWithNewKey(): SimulatedNetwork {
  const network = registeredNetwork(["x", "y"]);
  network.client("y").kill();
  network.crashServer();
  network.store.apply([{ kind: "remove-client", name: "y" }]);
  network.startServer();
  network.addClient("y", { label: "y2", identity: y2Identity, files: "y's new identity file" });
  network.settle();
  expect(network.client("y2").state.phase).toBe("online");
  return network;
}

describe("keys trusted on first use", () => {
  test("the first key seen for a name is kept silently; our own is not kept", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    expect(x.shown().some((line) => line.includes("WARNING"))).toBe(false);
    expect([...network.companionsOf("x").knownKeys]).toEqual([["y", y1Key]]);
    expect([...network.companionsOf("y").knownKeys]).toEqual([
      ["x", publicKeyText(identityFor("x").agreement)],
    ]);
  });

  test("a changed key is warned about once, after the table notice, however many pushes show it", () => {
    const network = yWithNewKey();
    const x = network.client("x");
    expect(x.shown().filter((line) => line === WARNING)).toHaveLength(1);
    expect(x.shown()[x.shown().indexOf(WARNING) - 1]).toBe(notices.tableUpdated);
    network.addClient("z");
    network.settle();
    network.client("y2").type("dereg y");
    network.settle();
    expect(x.shown().filter((line) => line === notices.tableUpdated).length).toBeGreaterThan(3);
    expect(x.shown().filter((line) => line === WARNING)).toHaveLength(1);
    // The file keeps the key first seen until the user accepts the new one.
    expect(network.companionsOf("x").knownKeys.get("y")).toBe(y1Key);
  });

  test("nothing is sent to a name whose key changed: not directly, not through the server", () => {
    const network = yWithNewKey();
    const x = network.client("x");
    const sent = network.sent.length;
    x.type("send y are you really y?");
    network.settle();
    expect(x.shown().at(-1)).toBe(notices.notSendingChangedKey("y"));
    network.client("y2").type("dereg y");
    network.settle();
    x.type("send Y for later");
    network.settle();
    expect(x.shown().at(-1)).toBe(notices.notSendingChangedKey("y"));
    const fromX = network.sent.slice(sent).filter((d) => d.from === "x");
    expect(fromX.map((d) => d.message.type)).not.toContain("chat");
    expect(fromX.map((d) => d.message.type)).not.toContain("save");
  });

  test("trust <name> accepts the new key: it is kept, and messages go again", () => {
    const network = yWithNewKey();
    const x = network.client("x");
    x.type("trust y");
    expect(x.shown().at(-1)).toBe(notices.trustedNewKey("y", fingerprint(y2Key)));
    expect(network.companionsOf("x").knownKeys.get("y")).toBe(y2Key);
    x.type("send y hello again");
    network.settle();
    expect(x.shown().at(-1)).toBe(notices.messageReceivedBy("y"));
    expect(network.client("y2").shown().at(-1)).toBe("x: hello again");
    x.type("trust y");
    expect(x.shown().at(-1)).toBe(notices.keyUnchanged("y", fingerprint(y2Key)));
  });

  test("a restarted client remembers the keys: warned again if the change was not accepted, quiet if it was", () => {
    const network = yWithNewKey();
    network.client("x").kill();
    const again = network.addClient("x", { label: "x again" });
    network.settle();
    expect(again.shown().filter((line) => line === WARNING)).toHaveLength(1);
    again.type("send y still refused");
    expect(again.shown().at(-1)).toBe(notices.notSendingChangedKey("y"));
    again.type("trust y");
    again.kill();
    const third = network.addClient("x", { label: "x third" });
    network.settle();
    expect(third.shown().some((line) => line.includes("WARNING"))).toBe(false);
    third.type("send y now trusted");
    network.settle();
    expect(third.shown().at(-1)).toBe(notices.messageReceivedBy("y"));
  });

  test("a new client's first process learns the new key without a warning", () => {
    const network = yWithNewKey();
    const z = network.addClient("z");
    network.settle();
    expect(z.shown().some((line) => line.includes("WARNING"))).toBe(false);
    expect(network.companionsOf("z").knownKeys.get("y")).toBe(y2Key);
  });
});

describe("whois and trust", () => {
  test("whois shows address, status and the fingerprint of the key; whois of yourself, yours", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    const y = network.client("y");
    x.type("whois Y");
    expect(x.shown().at(-1)).toBe(
      notices.whois("y", `127.0.0.1:${y.address.port}`, true, fingerprint(y1Key)),
    );
    y.type("whois y");
    const ownLine = notices.whoisSelf("y", `127.0.0.1:${y.address.port}`, true, fingerprint(y1Key));
    expect(y.shown().at(-1)).toBe(ownLine);
    // What y reads out for itself is what x sees for y: the check a person makes.
    expect(ownLine).toContain(fingerprint(y1Key));
    expect(fingerprint(y1Key)).toMatch(/^([a-z2-7]{4}-){7}[a-z2-7]{4}$/);
    y.type("dereg y");
    network.settle();
    y.type("whois y");
    expect(y.shown().at(-1)).toContain(", offline, key ");
    x.type("whois y");
    expect(x.shown().at(-1)).toBe(
      notices.whois("y", `127.0.0.1:${y.address.port}`, false, fingerprint(y1Key)),
    );
  });

  test("whois of a changed key shows both, and how to accept it", () => {
    const network = yWithNewKey();
    const x = network.client("x");
    x.type("whois y");
    const port = network.client("y2").address.port;
    expect(x.shown().at(-1)).toBe(
      notices.whoisChangedKey(
        "y",
        `127.0.0.1:${port}`,
        true,
        fingerprint(y2Key),
        fingerprint(y1Key),
      ),
    );
  });

  test("unknown names, and trust of yourself or of a key that did not change", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    x.type("whois nobody");
    expect(x.shown().at(-1)).toBe(notices.unknownRecipient("nobody"));
    x.type("trust nobody");
    expect(x.shown().at(-1)).toBe(notices.unknownRecipient("nobody"));
    x.type("trust x");
    expect(x.shown().at(-1)).toBe(notices.trustSelf("x"));
    x.type("trust y");
    expect(x.shown().at(-1)).toBe(notices.keyUnchanged("y", fingerprint(y1Key)));
    expect(network.companionsOf("x").knownKeys.get("y")).toBe(y1Key);
  });
});

/** A direct message from `sender` to `recipient` as a `stored` batch carries it, sealed with `keys`. */
function storedFrom(
  sender: string,
  recipient: string,
  ref: number,
  text: string,
  keys: KeyPairs,
  at: number,
): DeliveredMessage {
  const sealed = sealedBy(sender, recipient, ref, text, { keys });
  return { sender, kind: "direct", ...sealed, ak: publicKeyText(keys.agreement), at, ref };
}

/** A `stored` batch for `client` with a valid session MAC, as its server (or whoever holds its keys) makes one. */
function injectStored(
  network: SimulatedNetwork,
  client: SimClient,
  id: number,
  messages: DeliveredMessage[],
): void {
  const key = client.state.sessionKey;
  if (!key) throw new Error(`${client.name} has no session`);
  network.inject(
    SERVER_ADDRESS,
    client.address,
    withMac(testCrypto, key, { type: "stored", id, messages }),
  );
  network.settle();
}

describe("stored messages checked against the known keys", () => {
  const impostor = derivedKeyPairs("the server's own key for x");
  const impostorKey = publicKeyText(impostor.agreement);
  const xKey = publicKeyText(identityFor("x").agreement);

  test("sealed with another key than the one trusted for x: not shown, counted, one warning for the batch, still acknowledged", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const mark = y.shown().length;
    const before = y.state.unopenedMessages;
    injectStored(network, y, 9_000, [
      storedFrom("x", "y", 5, "send the money to mallory", impostor, network.now),
      storedFrom("X", "y", 6, "really, do it", impostor, network.now),
    ]);
    expect(y.shownSince(mark)).toEqual([
      notices.storedKeyRefused("x", 2, fingerprint(impostorKey), fingerprint(xKey)),
    ]);
    expect(y.shownSince(mark)[0]).toContain("2 stored messages from x were sealed");
    expect(y.state.unopenedMessages).toBe(before + 2);
    expect(network.sentBy("y", "ack").filter((d) => d.message.id === 9_000)).toHaveLength(1);
    // The server's key is not learned: x's stays trusted, and messages to x still go.
    expect(network.companionsOf("y").knownKeys.get("x")).toBe(xKey);
    y.type("send x still you?");
    network.settle();
    expect(y.shown().at(-1)).toBe(notices.messageReceivedBy("x"));
  });

  test("a copy of the refused batch sent again is acknowledged again and warned about no more", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const batch = [storedFrom("x", "y", 5, "forged", impostor, network.now)];
    const mark = y.shown().length;
    injectStored(network, y, 9_001, batch);
    injectStored(network, y, 9_001, batch);
    expect(y.shownSince(mark)).toHaveLength(1);
    expect(y.state.unopenedMessages).toBe(1);
    expect(network.sentBy("y", "ack").filter((d) => d.message.id === 9_001)).toHaveLength(2);
  });

  test("from a name never seen before: shown, and its key trusted on first use", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const wKeys = derivedKeyPairs("w, who left before y came");
    const wKey = publicKeyText(wKeys.agreement);
    const mark = y.shown().length;
    injectStored(network, y, 9_002, [storedFrom("w", "y", 3, "hello from w", wKeys, network.now)]);
    expect(y.shownSince(mark)).toEqual([
      notices.youHaveMessages,
      `w: ${formatTimestamp(network.now)} hello from w`,
    ]);
    expect(network.companionsOf("y").knownKeys.get("w")).toBe(wKey);
    expect(y.state.peerKeys.trusted("w")).toBe(wKey);
    expect(y.state.unopenedMessages).toBe(0);
  });

  test("from a name never seen before, one that does not open is not learned", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    const wKeys = derivedKeyPairs("w, who left before y came");
    const forged = storedFrom("w", "y", 3, "hello", impostor, network.now);
    injectStored(network, y, 9_003, [{ ...forged, ak: publicKeyText(wKeys.agreement) }]);
    expect(y.state.unopenedMessages).toBe(1);
    expect(y.state.peerKeys.trusted("w")).toBeUndefined();
    expect(network.companionsOf("y").knownKeys.has("w")).toBe(false);
  });

  test("sealed with the key trusted for x: shown as before, beside a refused one from z", () => {
    const network = registeredNetwork(["x", "y", "z"]);
    const y = network.client("y");
    const zKey = publicKeyText(identityFor("z").agreement);
    const mark = y.shown().length;
    injectStored(network, y, 9_004, [
      storedFrom("x", "y", 8, "genuine", identityFor("x"), network.now),
      storedFrom("z", "y", 9, "forged", impostor, network.now),
      storedFrom("x", "y", 10, "forged too", impostor, network.now),
    ]);
    expect(y.shownSince(mark)).toEqual([
      notices.youHaveMessages,
      `x: ${formatTimestamp(network.now)} genuine`,
      notices.storedKeyRefused("z", 1, fingerprint(impostorKey), fingerprint(zKey)),
      notices.storedKeyRefused("x", 1, fingerprint(impostorKey), fingerprint(xKey)),
    ]);
    expect(y.shownSince(mark)[2]).toContain("1 stored message from z was sealed");
  });

  test("a delivery of many batches: one warning once the last is in, counting them all", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    y.type("dereg y");
    network.settle();
    const forged = 300;
    network.store.apply(
      Array.from({ length: forged + 1 }, (_, index) => {
        const keys = index === forged ? identityFor("x") : impostor;
        const { n, box } = sealedBy("x", "y", index, `message ${index}`, { keys });
        const ak = publicKeyText(keys.agreement);
        return {
          kind: "put-message" as const,
          message: {
            ...{ id: 100 + index, recipient: "y", sender: "x", kind: "direct" as const },
            ...{ text: "", receivedAt: START_TIME, ref: index, sealed: { n, box, ak } },
          },
        };
      }),
    );
    network.restartServer();
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    expect(network.sentBy(SERVER_LABEL, "stored").length).toBeGreaterThan(3);
    expect(y.shownSince(mark)).toEqual([
      notices.welcome,
      notices.youHaveMessages,
      `x: ${formatTimestamp(START_TIME)} message ${forged}`,
      notices.storedKeyRefused("x", forged, fingerprint(impostorKey), fingerprint(xKey)),
      notices.tableUpdated,
    ]);
    expect(y.state.unopenedMessages).toBe(forged);
    expect(network.store.load().messages).toEqual([]);
  });

  test("a delivery whose last batch never comes: the warning comes when y stops waiting", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    y.type("dereg y");
    network.settle();
    network.store.apply(
      Array.from({ length: 200 }, (_, index) => {
        const { n, box } = sealedBy("x", "y", index, `message ${index}`, { keys: impostor });
        return {
          kind: "put-message" as const,
          message: {
            ...{ id: 100 + index, recipient: "y", sender: "x", kind: "direct" as const },
            ...{
              text: "",
              receivedAt: START_TIME,
              ref: index,
              sealed: { n, box, ak: impostorKey },
            },
          },
        };
      }),
    );
    network.restartServer();
    let batches = 0;
    network.drop((d) => d.message.type === "stored" && ++batches > 1);
    const mark = y.shown().length;
    y.type("reg y");
    network.settle();
    const shown = y.shownSince(mark);
    const warnings = shown.filter((line) => line.startsWith("[WARNING"));
    expect(warnings).toHaveLength(1);
    const refused = y.state.unopenedMessages;
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(200);
    expect(warnings[0]).toBe(
      notices.storedKeyRefused("x", refused, fingerprint(impostorKey), fingerprint(xKey)),
    );
  });

  test("y lost its identity and came back with a new key: what it sealed before shows, what after is refused until trust", () => {
    const network = registeredNetwork(["x", "y"]);
    const x = network.client("x");
    x.type("dereg x");
    network.settle();
    network.client("y").type("send x sealed with my first key");
    network.settle();
    const firstAt = network.now;
    network.client("y").kill();
    network.crashServer();
    network.store.apply([{ kind: "remove-client", name: "y" }]);
    network.startServer();
    const y2 = network.addClient("y", {
      label: "y2",
      identity: y2Identity,
      files: "y's new identity file",
    });
    network.settle();
    y2.type("send x sealed with my new key");
    network.settle();
    expect(y2.shown().at(-1)).toBe(notices.savedByServer);
    const mark = x.shown().length;
    x.type("reg x");
    network.settle();
    const shown = x.shownSince(mark);
    expect(shown).toContain(`y: ${formatTimestamp(firstAt)} sealed with my first key`);
    expect(shown).toContain(
      notices.storedKeyRefused("y", 1, fingerprint(y2Key), fingerprint(y1Key)),
    );
    expect(shown).toContain(WARNING);
    expect(shown.join("\n")).not.toContain("my new key");
    expect(network.server.mailboxes.size).toBe(0);
    // Once x accepts the new key, y's messages show again (sent again, they are not kept).
    x.type("trust y");
    y2.type("send x once more, with my new key");
    network.settle();
    expect(x.shown().at(-1)).toBe("y: once more, with my new key");
  });
});
