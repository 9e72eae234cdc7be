/**
 * Starts watching this process's event loop with a 1 ms timer; the function returned
 * stops it and gives the longest the loop went without turning. In the swarm, a
 * datagram the server sent is read no sooner than the loop turns, so a reach time
 * includes the swarm's own longest stall.
 */
export function watchTheLoop(): () => number {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return () => {
    clearInterval(timer);
    return Math.max(longest, performance.now() - last);
  };
}
