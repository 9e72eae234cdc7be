import { MAX_NAME_LENGTH } from "./messages.ts";

export const NAME_RULE = `1 to ${MAX_NAME_LENGTH} characters: ASCII letters, digits, "_", "-" or ".", starting with a letter or digit; unique ignoring case`;

const NAME_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,${MAX_NAME_LENGTH - 1}}$`);

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** Names are unique ignoring case: "Alice" and "alice" are one client. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}
