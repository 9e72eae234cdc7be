import { describe, expect, test } from "bun:test";
import { publicKeyText } from "../../src/core/session-crypto.ts";
import { decodeBase64url } from "../../src/crypto/base64url.ts";
import { notices } from "../../src/text/notices.ts";
import { derivedKeyPairs, identityFor, testCrypto } from "../helpers/identities.ts";
import { registeredNetwork, type SimulatedNetwork } from "../helpers/simulated-network.ts";

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
