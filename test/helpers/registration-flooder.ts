/**
 * A registration flood in a process of its own, so that the test process that reads the
 * clients' output is not the one kept busy: `bun registration-flooder.ts <server-port>
 * <ports> <names> <per-second>`. Prints one JSON line: how each registration was answered.
 */
import { derivedKeyPairs } from "./identities.ts";
import { describeAnswer, RAW_LOOPBACK, RawPeer } from "./raw-peer.ts";

const [serverPort, ports, names, perSecond] = process.argv.slice(2).map(Number);
if (!serverPort || !ports || !names || !perSecond) {
  console.error("usage: registration-flooder.ts <server-port> <ports> <names> <per-second>");
  process.exit(2);
}
const peers = await Promise.all(
  Array.from({ length: ports }, () => RawPeer.open({ ip: RAW_LOOPBACK, port: serverPort })),
);
// One key pair per port, as a flooder makes them: it signs every registration (the server
// checks the signature), but makes no key per name, so the flooder's own CPU stays free
// to acknowledge what the server sends the names it was granted.
for (const [p, peer] of peers.entries()) peer.keys = derivedKeyPairs(`flooder port ${p}`);
const outcomes: Record<string, number> = {};
await Promise.all(
  peers.map(async (peer, p) => {
    const started = performance.now();
    for (let n = 0; n < names; n++) {
      const outcome = describeAnswer(await peer.register(`f${p}-${n}`));
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      // The attacker's own pace: a load generator's schedule, not a protocol timer.
      const ahead = started + ((n + 1) * 1000) / perSecond - performance.now();
      if (ahead > 0) await Bun.sleep(ahead);
    }
  }),
);
for (const peer of peers) peer.close();
console.log(JSON.stringify(outcomes));
