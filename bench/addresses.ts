// Loopback addresses of benchmark real i (127.10.0.1 upwards, never .0 or .255), shared by the
// benchmark driver and its server process.

export function realAddr(i: number): string {
  return `127.${10 + Math.floor(i / 62500)}.${Math.floor(i / 250) % 250 + 1}.${(i % 250) + 1}`;
}
