import { describe, expect, test } from "bun:test";
import { registeredNetwork, SERVER_ADDRESS } from "../helpers/simulated-network.ts";

describe("the simulated network itself", () => {
  test("loss 1 in one direction loses everything that way and nothing the other way", () => {
    const network = registeredNetwork(["x", "y"]);
    network.setFaults({ loss: 1 }, { from: "x", to: "y" });
    const dropped = network.dropped;
    network.client("x").type("send y lost");
    network.client("y").type("send x kept");
    network.advance(400);
    // x's chat, sent at 0, 100, 200, 300 and 400, and x's acks of y's five sends.
    expect(network.dropped - dropped).toBe(10);
    expect(network.client("y").shown()).not.toContain("x: lost");
    expect(network.client("x").shown()).toContain("y: kept");
  });

  test("duplication 1 delivers every datagram twice", () => {
    const network = registeredNetwork(["x", "y"]);
    network.setFaults({ duplication: 1 }, { from: "x", to: "y" });
    const delivered = network.delivered;
    network.client("x").type("send y twice");
    network.settle();
    // The chat twice to y, y's two acks once each to x.
    expect(network.delivered - delivered).toBe(4);
    expect(network.sentBy("y", "ack").filter((d) => d.to === "x")).toHaveLength(2);
    expect(
      network
        .client("y")
        .shown()
        .filter((l) => l === "x: twice"),
    ).toHaveLength(1);
  });

  test("a delay range holds each datagram for a time inside it and reorders them", () => {
    const network = registeredNetwork(["x", "y"]);
    network.setFaults({ delayMinMs: 100, delayMaxMs: 300 });
    const x = network.client("x");
    const start = network.now;
    for (let index = 0; index < 20; index++) x.type(`send y ${index}`);
    network.advance(99);
    const y = network.client("y");
    const before = y.shown().length;
    network.advance(201);
    const arrivals = y.lines.slice(before);
    expect(arrivals).toHaveLength(20);
    for (const line of arrivals) {
      expect(line.at - start).toBeGreaterThanOrEqual(100);
      expect(line.at - start).toBeLessThanOrEqual(300);
    }
    const order = arrivals.map((line) => Number(line.text.slice(3)));
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
  });

  test("a killed client and a crashed server receive nothing", () => {
    const network = registeredNetwork(["x", "y"]);
    const y = network.client("y");
    y.kill();
    const before = y.shown().length;
    network.client("x").type("send y anyone?");
    network.crashServer();
    network.inject(y.address, SERVER_ADDRESS, { type: "ack", id: 1 });
    network.settle();
    expect(y.shown()).toHaveLength(before);
    expect(network.serverRunning).toBe(false);
    expect(() => network.server).toThrow("not running");
  });

  test("time moves only when told, and exactly to each event", () => {
    const network = registeredNetwork(["x"]);
    const start = network.now;
    network.crashServer();
    network.client("x").type("send_all ping");
    expect(network.now).toBe(start);
    network.advance(1234);
    expect(network.now).toBe(start + 1234);
    expect(network.sentBy("x", "channel").map((d) => d.at - start)).toEqual([0, 500, 1000]);
  });
});
