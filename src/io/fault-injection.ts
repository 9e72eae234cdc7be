import { seededRandom } from "./seeded-random.ts";

/**
 * Faults to inject into a UDP endpoint, for experiments and teaching:
 * `--simulate loss=0.2,dup=0.1,delay=0-300,seed=7`. Each applies to incoming and
 * outgoing datagrams alike; a delay range reorders datagrams.
 */
export interface FaultSpec {
  readonly loss: number;
  readonly duplication: number;
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  readonly seed: number;
}

export const FAULT_SPEC_SYNTAX = "loss=P,dup=P,delay=MIN-MAX,seed=N (P from 0 to 1, delays in ms)";

export class FaultSpecError extends Error {
  constructor(reason: string) {
    super(`--simulate ${reason}; expected ${FAULT_SPEC_SYNTAX}`);
    this.name = "FaultSpecError";
  }
}

function probability(key: string, value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number) || number < 0 || number > 1) {
    throw new FaultSpecError(`${key} must be a number from 0 to 1, got "${value}"`);
  }
  return number;
}

function milliseconds(value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isInteger(number) || number < 0 || number > 10_000) {
    throw new FaultSpecError(`delay must be whole milliseconds from 0 to 10000, got "${value}"`);
  }
  return number;
}

export function parseFaultSpec(text: string, defaultSeed: number): FaultSpec {
  let loss = 0;
  let duplication = 0;
  let delayMinMs = 0;
  let delayMaxMs = 0;
  let seed = defaultSeed;
  for (const part of text.split(",")) {
    const [key = "", value, ...extra] = part.split("=");
    if (value === undefined || extra.length > 0) throw new FaultSpecError(`cannot read "${part}"`);
    switch (key.trim()) {
      case "loss":
        loss = probability("loss", value);
        break;
      case "dup":
        duplication = probability("dup", value);
        break;
      case "delay": {
        const [min = "", max = min] = value.split("-");
        delayMinMs = milliseconds(min);
        delayMaxMs = milliseconds(max);
        if (delayMaxMs < delayMinMs)
          throw new FaultSpecError(`delay range "${value}" runs backwards`);
        break;
      }
      case "seed": {
        const number = Number(value);
        if (!Number.isSafeInteger(number) || number < 0) {
          throw new FaultSpecError(`seed must be a whole number, got "${value}"`);
        }
        seed = number;
        break;
      }
      default:
        throw new FaultSpecError(`unknown fault "${key}"`);
    }
  }
  return { loss, duplication, delayMinMs, delayMaxMs, seed };
}

export function describeFaultSpec(spec: FaultSpec): string {
  const delay = spec.delayMaxMs > 0 ? `, delay ${spec.delayMinMs}-${spec.delayMaxMs} ms` : "";
  return `simulating loss ${spec.loss}, duplication ${spec.duplication}${delay}, seed ${spec.seed}`;
}

/** Passes each datagram on zero, one or two times, now or later, as the spec and the seed decide. */
export type FaultyPassage = (deliver: () => void) => void;

export function faultyPassage(spec: FaultSpec): FaultyPassage {
  const random = seededRandom(spec.seed);
  const later = (deliver: () => void) => {
    const span = spec.delayMaxMs - spec.delayMinMs;
    const delay = spec.delayMinMs + Math.floor(random() * (span + 1));
    if (delay === 0) deliver();
    else setTimeout(deliver, delay);
  };
  return (deliver) => {
    if (random() < spec.loss) return;
    later(deliver);
    if (random() < spec.duplication) later(deliver);
  };
}
