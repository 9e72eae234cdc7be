import type { TableEntry } from "../protocol/messages.ts";
import { nameKey } from "../protocol/names.ts";

/** A table entry whose key is not the one trusted for its name. */
export interface ChangedKey {
  readonly name: string;
  readonly trusted: string;
  readonly offered: string;
}

/** What one table push taught about keys: names seen for the first time, and keys that changed. */
export interface KeyNews {
  readonly learned: readonly { readonly name: string; readonly key: string }[];
  /** Each changed key once: the push that first shows it, not the later ones. */
  readonly changed: readonly ChangedKey[];
}

/**
 * Trust on first use for peers' agreement keys, as ssh's known_hosts: the first key a
 * table shows for a name is trusted; a different one later is "changed", and nothing is
 * sent to that name until the user accepts it. Starts from the keys earlier processes of
 * this identity trusted (the shell reads them from `<stem>.known-keys`).
 */
export class PeerKeys {
  private readonly trustedKeys = new Map<string, string>();
  /** The changed key already warned about, per name: one warning per key, not per push. */
  private readonly warned = new Map<string, string>();

  constructor(known: Iterable<readonly [name: string, key: string]>) {
    for (const [name, key] of known) this.trustedKeys.set(nameKey(name), key);
  }

  trusted(name: string): string | undefined {
    return this.trustedKeys.get(nameKey(name));
  }

  /** False only for a key that differs from the one trusted for the name. */
  isTrusted(name: string, key: string): boolean {
    const trusted = this.trustedKeys.get(nameKey(name));
    return trusted === undefined || trusted === key;
  }

  /** Takes in the entries of a table push (not our own): trusts new names, reports changes once. */
  observe(entries: readonly TableEntry[]): KeyNews {
    const learned: { name: string; key: string }[] = [];
    const changed: ChangedKey[] = [];
    for (const { name, ak } of entries) {
      const key = nameKey(name);
      const trusted = this.trustedKeys.get(key);
      if (trusted === undefined) {
        this.trustedKeys.set(key, ak);
        learned.push({ name: key, key: ak });
      } else if (trusted === ak) {
        this.warned.delete(key);
      } else if (this.warned.get(key) !== ak) {
        this.warned.set(key, ak);
        changed.push({ name, trusted, offered: ak });
      }
    }
    return { learned, changed };
  }

  /** Trusts `key` for `name` if no key is trusted for it yet; says whether it did. */
  learn(name: string, key: string): boolean {
    if (this.trustedKeys.has(nameKey(name))) return false;
    this.trustedKeys.set(nameKey(name), key);
    return true;
  }

  /** The user accepted `key` for `name`. */
  trust(name: string, key: string): void {
    this.trustedKeys.set(nameKey(name), key);
    this.warned.delete(nameKey(name));
  }
}
