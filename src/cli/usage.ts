/** The short usage lines shown after every refusal. */
export const USAGE_ANY =
  "Usage: chatapp -s <port> | chatapp -c <name> <server-ip> <server-port> <client-port>";
export const USAGE_SERVER =
  "Usage: chatapp -s <port> [--data-dir DIR] [--quiet | --verbose] [--simulate FAULTS]";
export const USAGE_CLIENT =
  "Usage: chatapp -c <name> <server-ip> <server-port> <client-port> [--identity FILE] [--simulate FAULTS]";
export const USAGE_RELEASE = "Usage: chatapp --release-name <name> [--data-dir DIR]";
