import { sameAddress } from "../protocol/address.ts";
import type { Address, Message } from "../protocol/messages.ts";

export interface RetryPolicy {
  /** Sent again this long after each send while no ack came. */
  readonly resendEveryMs: number;
  /** Given up this long after the first send. */
  readonly deadlineMs: number;
  /** Windowed requests wait their turn so that their acks never arrive as one burst. */
  readonly windowed: boolean;
}

export interface OutboundRequest<Purpose> {
  readonly id: number;
  readonly to: Address;
  readonly message: Message;
  readonly purpose: Purpose;
  readonly policy: RetryPolicy;
  nextSendAt: number;
  deadline: number;
}

export interface Datagram {
  readonly to: Address;
  readonly message: Message;
}

/**
 * Requests that wait for an acknowledgement: sends, resends inside the wait, gives up
 * at the deadline, and keeps at most `window` windowed requests outstanding at once.
 */
export class OutboundRequests<Purpose> {
  private readonly waiting: OutboundRequest<Purpose>[] = [];
  private waitingHead = 0;
  private readonly inFlight = new Map<number, OutboundRequest<Purpose>>();
  private windowedInFlight = 0;

  constructor(private readonly window: number) {}

  add(
    id: number,
    to: Address,
    message: Message,
    purpose: Purpose,
    policy: RetryPolicy,
    now: number,
    out: Datagram[],
  ): void {
    const request: OutboundRequest<Purpose> = {
      id,
      to,
      message,
      purpose,
      policy,
      nextSendAt: now,
      deadline: now,
    };
    if (policy.windowed && this.windowedInFlight >= this.window) {
      this.waiting.push(request);
      return;
    }
    this.launch(request, now, out);
  }

  /** The request `id` if it was outstanding to `from`; it is done and no longer tracked. */
  acknowledge(
    id: number,
    from: Address,
    now: number,
    out: Datagram[],
  ): OutboundRequest<Purpose> | undefined {
    const request = this.inFlight.get(id);
    if (!request || !sameAddress(request.to, from)) return undefined;
    this.finish(request);
    this.pump(now, out);
    return request;
  }

  /** Sends what is due again and returns the requests whose deadline has passed. */
  advance(now: number, out: Datagram[]): OutboundRequest<Purpose>[] {
    const expired: OutboundRequest<Purpose>[] = [];
    for (const request of this.inFlight.values()) {
      if (request.deadline <= now) {
        expired.push(request);
      } else if (request.nextSendAt <= now) {
        out.push({ to: request.to, message: request.message });
        request.nextSendAt = Math.min(now + request.policy.resendEveryMs, request.deadline);
      }
    }
    for (const request of expired) this.finish(request);
    this.pump(now, out);
    return expired;
  }

  nextWakeAt(): number | undefined {
    let earliest: number | undefined;
    for (const request of this.inFlight.values()) {
      const at = Math.min(request.nextSendAt, request.deadline);
      if (earliest === undefined || at < earliest) earliest = at;
    }
    return earliest;
  }

  has(id: number): boolean {
    return this.inFlight.has(id);
  }

  get outstanding(): number {
    return this.inFlight.size + this.waiting.length - this.waitingHead;
  }

  private launch(request: OutboundRequest<Purpose>, now: number, out: Datagram[]): void {
    request.deadline = now + request.policy.deadlineMs;
    request.nextSendAt = Math.min(now + request.policy.resendEveryMs, request.deadline);
    this.inFlight.set(request.id, request);
    if (request.policy.windowed) this.windowedInFlight++;
    out.push({ to: request.to, message: request.message });
  }

  private finish(request: OutboundRequest<Purpose>): void {
    this.inFlight.delete(request.id);
    if (request.policy.windowed) this.windowedInFlight--;
  }

  private pump(now: number, out: Datagram[]): void {
    while (this.windowedInFlight < this.window && this.waitingHead < this.waiting.length) {
      const next = this.waiting[this.waitingHead];
      this.waitingHead++;
      if (next) this.launch(next, now, out);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
