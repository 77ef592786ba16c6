// Resource usage of this process for `stats` (getrusage, /proc/<pid>/fd, Vm* of /proc/<pid>/status).
// Async so a slow /proc never blocks the event loop; absent /proc (non-Linux) gives zeros, not a crash.

import { readdir, readFile } from 'node:fs/promises';
import type { ProcessStats } from './replies.js';

/** Parse the `Vm*` lines of /proc/<pid>/status the way the original's sscanf("Vm%31s %ld %7s") did. */
export function parseVmLines(status: string): ProcessStats['vm'] {
  const out: Array<{ name: string; value: number; unit: string }> = [];
  for (const line of status.split('\n')) {
    const m = /^Vm(\S{1,31}):\s+(\d+)\s+(\S{1,7})/.exec(line);
    if (m) out.push({ name: m[1]!, value: Number(m[2]), unit: m[3]! });
  }
  return out;
}

export async function readProcessStats(): Promise<ProcessStats> {
  const u = process.resourceUsage();
  let fdUsed = 0;
  let vm: ProcessStats['vm'] = [];
  try {
    fdUsed = (await readdir('/proc/self/fd')).length;
  } catch {
    // no procfs: report 0 rather than fail the command
  }
  try {
    vm = parseVmLines(await readFile('/proc/self/status', 'utf8'));
  } catch {
    // no procfs: no memory section lines
  }
  return {
    userTimeUs: u.userCPUTime,
    systemTimeUs: u.systemCPUTime,
    blockInOps: u.fsRead,
    blockOutOps: u.fsWrite,
    messagesSent: u.ipcSent,
    messagesRcvd: u.ipcReceived,
    signalsRcvd: u.signalsCount,
    voluntaryCtx: u.voluntaryContextSwitches,
    involuntaryCtx: u.involuntaryContextSwitches,
    fdUsed,
    vm,
  };
}
