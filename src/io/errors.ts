/** The UDP port could not be bound because another program holds it. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is already in use: choose another port or stop the program that holds it`);
    this.name = "PortInUseError";
  }
}

/** The server could not listen on the address given with `--bind`. */
export class BindError extends Error {
  constructor(
    readonly address: string,
    readonly port: number,
    reason: string,
  ) {
    super(`cannot listen on ${address} port ${port}: ${reason}`);
    this.name = "BindError";
  }
}

/** Why a bind failed, from its error code, in words. */
export function bindProblem(code: string | undefined, fallback: string): string {
  switch (code) {
    case "EADDRNOTAVAIL":
      return "no network interface of this machine has that address";
    case "EINVAL":
      return "the system cannot bind that address (an IPv6 link-local address needs a zone)";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return fallback;
  }
}

/** The data directory or its database could not be opened. */
export class StoreOpenError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`cannot open the message store at ${path}: ${reason}`);
    this.name = "StoreOpenError";
  }
}
