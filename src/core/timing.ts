/** Every wait and retry count of the protocol, in one place (SPEC.md §3–§6). */
export const timing = {
  /** How long a sender waits for an acknowledgement. */
  ackWaitMs: 500,
  /** Retries after the first try, for register, dereg, save and send_all. */
  serverRequestRetries: 5,
  /** Inside one 500 ms wait a direct message is sent at 0, 100, 200, 300 and 400 ms. */
  directResendEveryMs: 100,
  directSends: 5,
  /**
   * Probes and channel deliveries are sent every 100 ms of their 500 ms wait: with two
   * sends, 20% loss each way declared a live client dead one time in eight.
   */
  probeResendEveryMs: 100,
  /** Table pushes and stored-message batches are retried like client requests. */
  pushResendEveryMs: 500,
  pushDeadlineMs: 3000,
  /** A silent channel member that still answers probes gets the message again this many times. */
  channelRounds: 3,
  /** How long a receiver remembers a message id to recognise a retransmission. */
  dedupWindowMs: 60_000,
  /** How long a client remembers which messages it showed, to never show a later copy. */
  shownMemoryMs: 7 * 24 * 3_600_000,
  /**
   * How long the server keeps its answer to a request, to repeat it for a retransmission:
   * over three times the 3 s a sender keeps trying. Each answer kept was about 420 B (a
   * plain ack is now about 100 B less): at 3,000 requests/s, the 30 s kept before were
   * 38 MB (10 s are 13 MB).
   */
  replyCacheMs: 10_000,
  /**
   * Cluster: how long a node waits for another node's verdict on its client: its own
   * 500 ms probe, and the shared log's round trips both ways.
   */
  remoteProbeMs: 1500,
  /** A registration cookie is good for the period it was made in and the next. */
  cookiePeriodMs: 60_000,
} as const;

/**
 * How many of its own requests of each kind the server has outstanding at once, so acks
 * never overflow its receive buffer; one window per kind, so none waits behind another.
 * Channel deliveries have the widest: a post's copies queue in one lane, and a member
 * whose copy waits behind hundreds of slow acks (a flood of registered names that
 * answer late) would see the post late; 256 small acks still fit a default buffer.
 */
export const SERVER_LANES = { probe: 64, channel: 256, table: 64, stored: 16 } as const;
export type ServerLane = keyof typeof SERVER_LANES;
/** The largest of them: what one burst of acks can reach. */
export const SERVER_SEND_WINDOW = Math.max(...Object.values(SERVER_LANES));
/**
 * Parts of one push on their way to one client at once: a 10,000-entry snapshot is 14
 * parts, more than a default receive buffer (212 KB) holds if they come back to back.
 */
export const TABLE_PARTS_IN_FLIGHT = 2;
/** The same for a client sent small parts (below): about as many bytes at once. */
export const TABLE_SMALL_PARTS_IN_FLIGHT = 8;
/**
 * Table parts of its own the sweep keeps out while a channel post is fanned out: the
 * table catches up a little later, and the post's copies do not queue behind its acks.
 * Counted apart from pushes asked for by name (registrations): those never shut it out.
 */
export const SWEEP_PARTS_BESIDE_CHANNEL = 8;
/**
 * Channel copies outstanding or waiting above which a fan-out is under way and the
 * sweep yields; a few copies to members slow to answer are no reason to.
 */
export const CHANNEL_BUSY_ABOVE = 16;
/** A delta is reused while the table has moved on by at most this, or a 64th of its size. */
export const DELTA_REUSE_MIN_VERSIONS = 16;
/** Deltas kept for reuse, one per base version, and their entries in all: what a storm of changes may hold. */
export const DELTAS_KEPT = 256;
export const DELTA_ENTRIES_KEPT = 16_384;
/**
 * A client behind by more changes than this gets the shared pieces of the log after a
 * head built for it (PROTOCOL.md, "Pieces"), not a delta built for it alone.
 */
export const BULK_DELTA_ABOVE_VERSIONS = 256;
/** The first parts of such deltas kept, one per base, the most recently used: each is one part. */
export const HEADS_KEPT = 16;
/** Table changes kept for deltas; a client further behind gets a snapshot. */
export const TABLE_LOG_LIMIT = 100_000;
/** Bigger parts cost far less CPU on both sides per byte (PROTOCOL.md, "Why 56 KB parts"). */
export const TABLE_PART_BYTES = 56_000;
/**
 * Parts for a client a push of large parts did not reach (a lossy link loses a 56 KB
 * datagram's 39 fragments far more often than an 8 KB one's 6, a path may drop
 * fragments): its next pushes are cut again into parts of at most this.
 */
export const TABLE_SMALL_PART_BYTES = 8_000;
export const STORED_BATCH_BYTES = 8_000;
/** Answers kept for retransmissions; past this the oldest goes first (normally they expire). */
export const REPLY_CACHE_LIMIT = 100_000;
/** Used registrations kept while their cookie is valid (this period and the one before), at most. */
export const USED_REGISTRATIONS_LIMIT = 100_000;
/** Stored messages one recipient may have waiting. */
export const MAILBOX_LIMIT = 1_000;

/** New names one address may take in NAME_GRANT_PERIOD_MS: a flood of registrations costs its sender. */
export const NAMES_PER_ADDRESS = 4;
export const NAME_GRANT_PERIOD_MS = 60_000;
/** Offline names with nothing stored are forgotten after this long, unless the server says otherwise. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 3_600_000;
/** How often the server looks for names to forget, at most. */
export const FORGET_CHECK_EVERY_MS = 3_600_000;
/** All stored messages together, unless the server says otherwise. */
export const DEFAULT_STORE_QUOTA = { messages: 100_000, textBytes: 1_000_000_000 } as const;

/** Datagrams per second one source address may send the server, and the burst it may save up. */
export const SOURCE_RATE_PER_SECOND = 1_000;
export const SOURCE_BURST = 2_000;
/** A client starts requests to the server at most this fast: well inside the limit above. */
export const CLIENT_REQUESTS_PER_SECOND = 300;
export const CLIENT_REQUEST_BURST = 300;
