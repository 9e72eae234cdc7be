/** The short usage lines shown after every refusal and at the top of the help. */
export const USAGE_ANY =
  "Usage: chatapp -s <port> | chatapp -c <name> <server-ip> <server-port> <client-port>";
export const USAGE_SERVER = "Usage: chatapp -s <port> [options]   (chatapp -s --help lists them)";
export const USAGE_CLIENT =
  "Usage: chatapp -c <name> <server-ip> <server-port> <client-port> [options]";
export const USAGE_RELEASE = "Usage: chatapp --release-name <name> [--data-dir DIR | --redis URL]";
