import type { ClientOptions } from "../cli/options.ts";
import { type ClientEffect, type ClientInput, createClientState } from "../core/client-state.ts";
import { nextClientWakeAt, stepClient } from "../core/step-client.ts";
import { nodeCryptoPort } from "../crypto/node-crypto-port.ts";
import {
  companionPaths,
  IdentityError,
  identityPath,
  loadOrCreateIdentity,
} from "../identity/identity-file.ts";
import { loadKnownKeys } from "../identity/known-keys.ts";
import { ShownLog } from "../identity/shown-log.ts";
import { formatAddress } from "../protocol/address.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { MAX_TABLE_DATAGRAM_BYTES } from "../protocol/messages.ts";
import { describeFaultSpec } from "./fault-injection.ts";
import { randomRequestId } from "./random.ts";
import { openTerminal, type Terminal } from "./terminal.ts";
import { openUdpEndpoint, type UdpEndpoint } from "./udp-endpoint.ts";
import { WakeTimer } from "./wake-timer.ts";

/** Runs a client until it leaves; resolves to the exit code. */
export async function runClient(options: ClientOptions): Promise<number> {
  // Before any socket: a problem with the identity is one clear line and exit code 1.
  const identityFile = identityPath({ identityOption: options.identity, name: options.name });
  const { identity } = loadOrCreateIdentity(identityFile);
  const companions = companionPaths(identityFile);
  const books = loadKnownKeys(companions);
  let terminal: Terminal | undefined;
  /** Said once the terminal is open: a companion file may fail before it is. */
  const early: string[] = [];
  const tell = (text: string): void => {
    if (terminal) terminal.show(text);
    else early.push(text);
  };
  const shownLog = ShownLog.open(companions.shown, {
    onWriteError: (error) => tell(`[${error.message}]`),
  });
  const server = { ip: options.serverIp, port: options.serverPort };
  const serverLabel = formatAddress(server);
  const state = createClientState({
    name: options.name,
    server,
    firstRequestId: randomRequestId(),
    crypto: nodeCryptoPort,
    identity,
    pinnedServerKey: books.servers.get(serverLabel)?.key,
    shownBefore: shownLog.keys(),
    knownPeerKeys: Array.from(books.peers.entries(), ([name, { key }]) => [name, key] as const),
  });
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((done) => {
    finish = done;
  });
  let endpoint: UdpEndpoint | undefined;
  let ended = false;
  const timer = new WakeTimer(() => feed({ kind: "tick" }));

  async function end(code: number): Promise<void> {
    if (ended) return;
    ended = true;
    timer.cancel();
    endpoint?.close();
    shownLog.close();
    terminal?.close();
    await terminal?.flushed();
    finish(code);
  }

  function carryOut(effects: readonly ClientEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "send":
          endpoint?.send(effect.to, encodeMessage(effect.message));
          break;
        case "show":
          terminal?.show(effect.text);
          break;
        case "exit":
          void end(effect.code);
          return;
        case "pin-server-key":
          keepTrying(() => books.servers.trust(serverLabel, effect.key));
          break;
        case "record-shown":
          shownLog.record(effect.sender, effect.ref);
          break;
        case "learn-peer-keys": {
          const keys = effect.keys.map(({ name, key }) => ({ label: name, key }));
          keepTrying(() => books.peers.learn(keys));
          break;
        }
        case "trust-peer-key":
          keepTrying(() => books.peers.trust(effect.name, effect.key));
          break;
        default:
          effect satisfies never;
      }
    }
  }

  /** A companion file that cannot be written is said once; the chat goes on with memory. */
  function keepTrying(write: () => void): void {
    try {
      write();
    } catch (error) {
      if (error instanceof IdentityError) tell(`[${error.message}]`);
      else throw error;
    }
  }

  function feed(input: ClientInput): void {
    if (ended) return;
    const now = Date.now();
    carryOut(stepClient(state, input, now));
    if (!ended) timer.arm(nextClientWakeAt(state), now);
  }

  endpoint = await openUdpEndpoint({
    port: options.clientPort,
    onDatagram: (from, bytes) => feed({ kind: "datagram", from, bytes }),
    onProblem: () => {},
    maxDatagramBytes: MAX_TABLE_DATAGRAM_BYTES,
    ...(options.simulate ? { simulate: options.simulate } : {}),
  });

  terminal = openTerminal({
    line: (text) => feed({ kind: "line", text }),
    leave: (reason) => {
      if (reason === "end-of-input") feed({ kind: "end-of-input" });
      else void end(0);
    },
  });
  for (const text of early.splice(0)) terminal.show(text);
  if (options.simulate) terminal.show(`[${describeFaultSpec(options.simulate)}]`);
  terminal.startPrompting();
  feed({ kind: "start" });
  return await finished;
}
