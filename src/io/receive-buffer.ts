import { dlopen, FFIType, ptr } from "bun:ffi";

/*
 * The kernel's receive buffer of a UDP socket (SO_RCVBUF). Bun.udpSocket has no option for
 * it, so it is set through the C library's setsockopt on the socket's descriptor.
 */

/**
 * What a server asks for: the acks of a post to 10,000 members arrive within
 * milliseconds, about 1 KB each in the kernel's accounting; the default 208 KB holds 200.
 */
export const SERVER_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;

interface SocketOptionNumbers {
  readonly libraries: readonly string[];
  readonly solSocket: number;
  readonly soRcvbuf: number;
}

/** From <sys/socket.h>; other platforms keep their default. */
function numbersForThisPlatform(): SocketOptionNumbers | undefined {
  if (process.platform === "linux") {
    return {
      libraries: ["libc.so.6", `libc.musl-${muslArch()}.so.1`, "libc.so"],
      solSocket: 1,
      soRcvbuf: 8,
    };
  }
  if (process.platform === "darwin") {
    return { libraries: ["/usr/lib/libSystem.B.dylib"], solSocket: 0xffff, soRcvbuf: 0x1002 };
  }
  return undefined;
}

function muslArch(): string {
  return process.arch === "arm64" ? "aarch64" : "x86_64";
}

function openSocketCalls(libraries: readonly string[]) {
  for (const library of libraries) {
    try {
      return dlopen(library, {
        setsockopt: {
          args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32],
          returns: FFIType.i32,
        },
        getsockopt: {
          args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
          returns: FFIType.i32,
        },
      }).symbols;
    } catch {
      // Not this platform's C library: try the next name.
    }
  }
  return undefined;
}

/**
 * Asks for `bytes` of receive buffer and returns what the socket has afterwards (Linux
 * grants at most twice `net.core.rmem_max`), or undefined where it cannot be read.
 */
export function enlargeReceiveBuffer(fd: number | undefined, bytes: number): number | undefined {
  if (fd === undefined) return undefined;
  const numbers = numbersForThisPlatform();
  const calls = numbers && openSocketCalls(numbers.libraries);
  if (!numbers || !calls) return undefined;
  const wanted = new Int32Array([bytes]);
  calls.setsockopt(fd, numbers.solSocket, numbers.soRcvbuf, ptr(wanted), 4);
  const granted = new Int32Array(1);
  const length = new Uint32Array([4]);
  const read = calls.getsockopt(fd, numbers.solSocket, numbers.soRcvbuf, ptr(granted), ptr(length));
  return read === 0 ? (granted[0] ?? undefined) : undefined;
}

/** For `--verbose`: what the kernel granted, and how to get more where it capped it. */
export function describeReceiveBuffer(granted: number, asked: number): string {
  const size = `${Math.round(granted / 1024)} KB`;
  return granted >= asked
    ? `UDP receive buffer: ${size}`
    : `UDP receive buffer: ${size}, less than the ${Math.round(asked / 1024)} KB asked for; on Linux \`sysctl -w net.core.rmem_max=${asked}\` allows it (bursts of acks from thousands of clients are dropped beyond it)`;
}
