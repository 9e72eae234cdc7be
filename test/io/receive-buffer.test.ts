import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { describeReceiveBuffer } from "../../src/io/receive-buffer.ts";
import { openUdpEndpoint } from "../../src/io/udp-endpoint.ts";

/** Linux grants twice what is asked, up to twice net.core.rmem_max. */
function linuxGrant(asked: number): number {
  const ceiling = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8").trim());
  return Math.min(asked, ceiling) * 2;
}

async function endpointAsking(receiveBufferBytes?: number) {
  return openUdpEndpoint({
    port: 0,
    hostname: "127.0.0.1",
    onDatagram: () => {},
    onProblem: () => {},
    ...(receiveBufferBytes === undefined ? {} : { receiveBufferBytes }),
  });
}

describe("the socket's receive buffer", () => {
  test.if(process.platform === "linux")(
    "is what the endpoint asked for, as far as the system allows",
    async () => {
      const asked = 3 * 1024 * 1024;
      const endpoint = await endpointAsking(asked);
      try {
        expect(endpoint.receiveBufferBytes).toBe(linuxGrant(asked));
      } finally {
        endpoint.close();
      }
    },
  );

  test("is left alone, and not read, when the endpoint asks for nothing", async () => {
    const endpoint = await endpointAsking();
    try {
      expect(endpoint.receiveBufferBytes).toBeUndefined();
    } finally {
      endpoint.close();
    }
  });

  test("--verbose says what was granted, and how to allow more where the system capped it", () => {
    expect(describeReceiveBuffer(16 * 1024 * 1024, 8 * 1024 * 1024)).toBe(
      "UDP receive buffer: 16384 KB",
    );
    expect(describeReceiveBuffer(425_984, 8 * 1024 * 1024)).toBe(
      "UDP receive buffer: 416 KB, less than the 8192 KB asked for; on Linux `sysctl -w net.core.rmem_max=8388608` allows it (bursts of acks from thousands of clients are dropped beyond it)",
    );
  });
});
