import { textLength } from "../protocol/codec.ts";
import { type ChannelMessage, MAX_TEXT_LENGTH, type Message } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";
import { type StoredMessage, summaryOf, utf8Length } from "../store/offline-store.ts";
import { isRemote, newStoredId } from "./server-cluster.ts";
import { sendNextStoredBatch, storeMessage, unstoreMessage } from "./server-mailboxes.ts";
import type { ChannelPost, Requester, ServerClient } from "./server-state.ts";
import { FAN_OUT_TIMES_KEPT } from "./server-state.ts";
import {
  channelPolicy,
  nextRequestId,
  reply,
  replyError,
  type Step,
  toClient,
} from "./server-step.ts";
import { requestTablePush } from "./server-table-sync.ts";

/*
 * The channel: a post kept for every member until it has it, delivered live to those online, stored for the others.
 */

export function onChannel(
  step: Step,
  requester: Requester,
  sender: ServerClient,
  request: ChannelMessage,
): void {
  if (!sender.online) requestTablePush(step, sender);
  if (textLength(request.text) > MAX_TEXT_LENGTH) {
    replyError(step, requester, "too-long");
    return;
  }
  const post: ChannelPost = {
    sender: sender.name,
    text: request.text,
    receivedAt: step.now,
    ref: request.ref ?? request.id,
    fanOut: { startedAt: step.now, pending: 0 },
  };
  let live = 0;
  let stored = 0;
  let unstored = 0;
  let remote = 0;
  for (const member of step.state.clients.values()) {
    if (member.key === sender.key) continue;
    if (member.online && isRemote(step.state, member)) {
      // Its node delivers it, from the copy it finds in the shared log.
      keepWhileDelivering(step, member, post);
      live++;
      remote++;
    } else if (member.online) {
      const copy = keepWhileDelivering(step, member, post);
      deliverChannelPost(step, member, post, 0, copy, undefined, undefined);
      live++;
    } else if (storeMessage(step, member, channelStored(post))) {
      unstored++;
    } else {
      stored++;
    }
  }
  post.fanOut.pending = live - remote;
  if (live > remote) step.fanOuts.push(post.fanOut);
  step.state.activity.channelPosts++;
  step.state.activity.storedForChannel += stored;
  step.log(
    "debug",
    `channel message from ${sender.name}: sent to ${live} online member(s), stored for ${stored} offline${unstored ? `, not stored for ${unstored} (mailbox or store full)` : ""}`,
  );
  reply(step, requester, { type: "ack", id: request.id, ...(unstored > 0 ? { unstored } : {}) });
}

function channelStored(post: ChannelPost): Omit<StoredMessage, "id" | "recipient"> {
  const { sender, text, receivedAt, ref } = post;
  return { sender, kind: "channel", text, receivedAt, ref };
}

/** A post kept for an online member while it is delivered live: a crash then loses none. */
function keepWhileDelivering(step: Step, member: ServerClient, post: ChannelPost): StoredMessage {
  const { state } = step;
  const copy: StoredMessage = {
    id: newStoredId(state, step.now),
    recipient: member.name,
    ...channelStored(post),
  };
  const mailbox = state.mailboxes.get(member.key) ?? [];
  mailbox.push(summaryOf(copy));
  state.mailboxes.set(member.key, mailbox);
  state.delivering.add(copy.id);
  step.changes.push({ kind: "put-message", message: copy });
  step.stored.push(copy);
  return copy;
}

/** The member has the post: its copy goes. */
export function deliveredLive(step: Step, copy: StoredMessage | undefined): void {
  if (!copy || !step.state.delivering.has(copy.id)) return;
  unstoreMessage(step.state, copy);
  step.changes.push({
    kind: "remove-messages",
    ids: [copy.id],
    recipient: nameKey(copy.recipient),
  });
}

/** After a crash: what online members still have waiting reaches them as stored messages. */
export function resumeDeliveries(step: Step): void {
  const { state } = step;
  state.resumeDeliveries = false;
  for (const client of state.clients.values()) {
    if (!client.online || isRemote(state, client) || state.storedDeliveries.has(client.key)) {
      continue;
    }
    if ((state.mailboxes.get(client.key)?.length ?? 0) === 0) continue;
    step.log("info", `resuming the delivery of stored messages to ${client.name}`);
    state.storedDeliveries.add(client.key);
    sendNextStoredBatch(step, client);
  }
}

export function deliverChannelPost(
  step: Step,
  member: ServerClient,
  post: ChannelPost,
  round: number,
  copy: StoredMessage | undefined,
  sameId: number | undefined,
  sameMessage: Message | undefined,
): void {
  const id = sameId ?? nextRequestId(step.state);
  // A retry round goes under the member's current session key, which may be new.
  const message: Message = sameMessage
    ? toClient(step.state, member, sameMessage)
    : toClient(step.state, member, {
        type: "channel-message",
        id,
        from: post.sender,
        text: post.text,
        ref: post.ref,
      });
  step.state.outbound.add(
    id,
    { ip: member.ip, port: member.port },
    message,
    { kind: "channel", clientKey: member.key, post, round, copy },
    channelPolicy,
    step.now,
    step.datagrams,
  );
}

export function storeChannelPost(
  step: Step,
  member: ServerClient,
  post: ChannelPost,
  copy: StoredMessage | undefined,
): void {
  if (copy) {
    const { state } = step;
    // Already on disk: it only starts to count as a stored message.
    if (!state.delivering.delete(copy.id)) return;
    state.storeUse.messages++;
    state.storeUse.textBytes += utf8Length(copy.text);
    state.activity.storedForChannel++;
    step.log("debug", `stored a channel message from ${post.sender} for ${member.name}`);
    return;
  }
  const refusal = storeMessage(step, member, channelStored(post));
  if (refusal) {
    step.log(
      "warn",
      `a channel message from ${post.sender} could not be stored for ${member.name}: ${refusal}`,
    );
  } else {
    step.state.activity.storedForChannel++;
    step.log("debug", `stored a channel message from ${post.sender} for ${member.name}`);
  }
}

/** One member has the post or has been given up on; the last one ends the fan-out. */
export function fanOutSettled(step: Step, post: ChannelPost): void {
  const { fanOut } = post;
  fanOut.pending--;
  const times = step.state.fanOutTimes;
  if (fanOut.pending === 0 && times.length < FAN_OUT_TIMES_KEPT) {
    times.push(step.now - fanOut.startedAt);
  }
}
