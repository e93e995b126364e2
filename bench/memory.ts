import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Resets the peak resident set size (`VmHWM`) of a process to its current size, by writing `5` to
 * `/proc/<pid>/clear_refs` (Linux 4.0 and later, see proc_pid_clear_refs(5)). The caller must own the process.
 */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch (error) {
    throw new Error(`Cannot reset the peak memory of process ${pid} through /proc/${pid}/clear_refs (Linux only): ${(error as Error).message}`);
  }
}

/** Reads the peak resident set size (`VmHWM`) of a process since start or since the last reset, in bytes. */
export function readPeakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`/proc/${pid}/status has no VmHWM line; is the process still running?`);
  return Number(match[1]) * 1024;
}
