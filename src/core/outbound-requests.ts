import { sameAddress } from "../protocol/address.ts";
import type { Address, Message } from "../protocol/messages.ts";

export interface RetryPolicy {
  /** Sent again this long after each send while no ack came. */
  readonly resendEveryMs: number;
  /** Given up this long after the first send. */
  readonly deadlineMs: number;
  /**
   * Requests of a lane wait for a place in its window, so that their acks never arrive
   * as one burst; each lane has its own, so no kind of request waits behind another.
   * Without a lane a request goes at once.
   */
  readonly lane?: string;
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

class Lane<Purpose> {
  readonly waiting: OutboundRequest<Purpose>[] = [];
  waitingHead = 0;
  inFlight = 0;

  constructor(readonly window: number) {}

  get hasRoom(): boolean {
    return this.inFlight < this.window;
  }

  get waitingCount(): number {
    return this.waiting.length - this.waitingHead;
  }

  nextWaiting(): OutboundRequest<Purpose> | undefined {
    if (this.waitingHead >= this.waiting.length) return undefined;
    const next = this.waiting[this.waitingHead];
    this.waitingHead++;
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
    return next;
  }
}

/**
 * Requests that wait for an acknowledgement: sends, resends inside the wait, gives up
 * at the deadline, and keeps at most its lane's window of each lane outstanding at once.
 */
export class OutboundRequests<Purpose> {
  private readonly lanes = new Map<string, Lane<Purpose>>();
  private readonly inFlight = new Map<number, OutboundRequest<Purpose>>();
  private readonly cancelled = new Set<number>();

  constructor(windows: Readonly<Record<string, number>>) {
    for (const [name, window] of Object.entries(windows)) this.lanes.set(name, new Lane(window));
  }

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
    const lane = this.laneOf(request);
    if (lane && !lane.hasRoom) {
      lane.waiting.push(request);
      return;
    }
    this.launch(request, now, out);
  }

  /** Whether a request of `lane` would go out now rather than wait. */
  hasRoom(lane: string): boolean {
    const found = this.lanes.get(lane);
    return found === undefined || (found.hasRoom && found.waitingCount === 0);
  }

  /** Requests of `lane` outstanding now, and those waiting for a place. */
  load(lane: string): { readonly inFlight: number; readonly waiting: number } {
    const found = this.lanes.get(lane);
    return { inFlight: found?.inFlight ?? 0, waiting: found?.waitingCount ?? 0 };
  }

  /** Forgets a request, outstanding or waiting: no resend, no verdict. */
  cancel(id: number, now: number, out: Datagram[]): void {
    const request = this.inFlight.get(id);
    if (request) {
      this.finish(request);
      this.pump(now, out);
    } else {
      this.cancelled.add(id);
    }
  }

  /** The request `id` if it was outstanding to `from`; it is done and no longer tracked. */
  /** The request in flight with this id to `from`, left in flight (an ack checked before it counts). */
  peek(id: number, from: Address): OutboundRequest<Purpose> | undefined {
    const request = this.inFlight.get(id);
    return request && sameAddress(request.to, from) ? request : undefined;
  }

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
    let waiting = 0;
    for (const lane of this.lanes.values()) waiting += lane.waitingCount;
    return this.inFlight.size + waiting - this.cancelled.size;
  }

  private laneOf(request: OutboundRequest<Purpose>): Lane<Purpose> | undefined {
    return request.policy.lane === undefined ? undefined : this.lanes.get(request.policy.lane);
  }

  private launch(request: OutboundRequest<Purpose>, now: number, out: Datagram[]): void {
    request.deadline = now + request.policy.deadlineMs;
    request.nextSendAt = Math.min(now + request.policy.resendEveryMs, request.deadline);
    this.inFlight.set(request.id, request);
    const lane = this.laneOf(request);
    if (lane) lane.inFlight++;
    out.push({ to: request.to, message: request.message });
  }

  private finish(request: OutboundRequest<Purpose>): void {
    this.inFlight.delete(request.id);
    const lane = this.laneOf(request);
    if (lane) lane.inFlight--;
  }

  private pump(now: number, out: Datagram[]): void {
    for (const lane of this.lanes.values()) {
      while (lane.hasRoom) {
        const next = lane.nextWaiting();
        if (!next) break;
        if (this.cancelled.delete(next.id)) continue;
        this.launch(next, now, out);
      }
    }
  }
}
