import { expect, test } from "bun:test";
import { MAILBOX_LIMIT } from "../../src/core/timing.ts";
import type { StoreChange } from "../../src/store/offline-store.ts";
import { SimulatedNetwork } from "../helpers/simulated-network.ts";
import { LONG_TEST_TIMEOUT_MS } from "../helpers/timeouts.ts";

const RECIPIENTS = 40;

test(
  `${RECIPIENTS} recipients × ${MAILBOX_LIMIT} stored messages under loss: each shown exactly once, no batch sent again after its ack arrived`,
  () => {
    const network = new SimulatedNetwork({ seed: 808 });
    const names = Array.from({ length: RECIPIENTS }, (_, i) => `r${i}`);
    const clients = network.addRegisteredClients(["sender", ...names]);
    const changes: StoreChange[] = [];
    let id = 1;
    for (const name of names) {
      const record = network.store.load().clients.find((c) => c.name === name);
      if (!record) throw new Error(`no record for ${name}`);
      changes.push({ kind: "put-client", client: { ...record, online: false } });
      for (let n = 0; n < MAILBOX_LIMIT; n++) {
        changes.push({
          kind: "put-message",
          message: {
            id: id++,
            recipient: name,
            sender: "sender",
            kind: "direct",
            text: `message ${n} for ${name}`,
            receivedAt: network.now - 60_000 + n,
            ref: n + 1,
          },
        });
      }
    }
    network.store.apply(changes);
    network.restartServer();
    const acked = new Set<number>();
    const resentAfterAck: number[] = [];
    network.serverSteps.push((record) => {
      if (record.received?.type === "ack") acked.add(record.received.id);
      for (const effect of record.effects) {
        if (effect.kind === "send" && effect.message.type === "stored") {
          if (acked.has(effect.message.id)) resentAfterAck.push(effect.message.id);
        }
      }
    });
    network.setFaults({ loss: 0.05, duplication: 0.02, delayMinMs: 1, delayMaxMs: 30 });
    const recipients = clients.slice(1);
    for (const recipient of recipients) {
      recipient.state.phase = "offline";
      recipient.type(`reg ${recipient.state.name}`);
    }
    network.settle();
    network.clearFaults();
    network.settle();
    for (const recipient of recipients) {
      const shown = recipient.shown().filter((line) => line.startsWith("sender: "));
      expect(shown).toHaveLength(MAILBOX_LIMIT);
      expect(new Set(shown).size).toBe(MAILBOX_LIMIT);
    }
    expect(network.store.load().messages).toEqual([]);
    expect(resentAfterAck).toEqual([]);
  },
  LONG_TEST_TIMEOUT_MS,
);
