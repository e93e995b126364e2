import { readFileSync } from 'node:fs';

/** CPU time counters at one moment, in clock ticks (USER_HZ) as /proc reports them. */
export interface CpuSample {
  /** Busy time of all CPUs together: user, nice, system, irq, softirq and steal. */
  machineBusy: number;
  /** Busy and idle time of all CPUs together. */
  machineTotal: number;
  /** User and system time of the listed processes. */
  listedProcesses: number;
}

/** Reads the machine's CPU counters from /proc/stat and those of `pids` from /proc/<pid>/stat. */
export function sampleCpu(pids: number[]): CpuSample {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const machineBusy = user + nice + system + irq + softirq + steal;
  return { machineBusy, machineTotal: machineBusy + idle + iowait, listedProcesses: pids.reduce((sum, pid) => sum + processTicks(pid), 0) };
}

/**
 * Returns the share (0 to 1) of all CPU time between two samples that was used by processes other
 * than the listed ones, such as test runs or builds that share the machine.
 */
export function otherProcessesShare(start: CpuSample, end: CpuSample): number {
  const total = end.machineTotal - start.machineTotal;
  if (total <= 0) return 0;
  const others = end.machineBusy - start.machineBusy - (end.listedProcesses - start.listedProcesses);
  return Math.max(0, others) / total;
}

/** Returns the user plus system time of one process, fields 14 and 15 of /proc/<pid>/stat. */
function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name in field 2 may contain spaces, so the fields are counted after its closing bracket.
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(afterName[11]) + Number(afterName[12]);
}
