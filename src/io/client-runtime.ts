import type { ClientOptions } from "../cli/options.ts";
import { type ClientEffect, type ClientInput, createClientState } from "../core/client-state.ts";
import { nextClientWakeAt, stepClient } from "../core/step-client.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { describeFaultSpec } from "./fault-injection.ts";
import { randomRequestId } from "./random.ts";
import { openTerminal, type Terminal } from "./terminal.ts";
import { openUdpEndpoint, type UdpEndpoint } from "./udp-endpoint.ts";
import { WakeTimer } from "./wake-timer.ts";

/** Runs a client until it leaves; resolves to the exit code. */
export async function runClient(options: ClientOptions): Promise<number> {
  const state = createClientState({
    name: options.name,
    server: { ip: options.serverIp, port: options.serverPort },
    firstRequestId: randomRequestId(),
  });
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((done) => {
    finish = done;
  });
  let terminal: Terminal | undefined;
  let endpoint: UdpEndpoint | undefined;
  let ended = false;
  const timer = new WakeTimer(() => feed({ kind: "tick" }));

  async function end(code: number): Promise<void> {
    if (ended) return;
    ended = true;
    timer.cancel();
    endpoint?.close();
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
        default:
          effect satisfies never;
      }
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
    ...(options.simulate ? { simulate: options.simulate } : {}),
  });

  terminal = openTerminal({
    line: (text) => feed({ kind: "line", text }),
    leave: (reason) => {
      if (reason === "end-of-input") feed({ kind: "end-of-input" });
      else void end(0);
    },
  });
  if (options.simulate) terminal.show(`[${describeFaultSpec(options.simulate)}]`);
  terminal.startPrompting();
  feed({ kind: "start" });
  return await finished;
}
