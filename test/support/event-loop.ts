/**
 * The event-loop monitor of the stall tests: a 1 ms timer notes the longest gap between its
 * ticks, in wall time and in CPU time of the main thread (the one that runs the event loop).
 *
 * The CPU gap is what the code under test held the loop for. The wall gap adds the time the OS
 * did not run the thread at all (hundreds of ms on a shared, loaded 2-core machine), and the
 * process's CPU time (`process.cpuUsage`) would add the garbage collector's helper threads and
 * libuv's pool, which run beside the loop; so on Linux the main thread's own run time is read
 * from `/proc/thread-self/schedstat` (nanoseconds), elsewhere the process's CPU time stands in.
 */
import fs from 'node:fs';

/** The longest gap between two ticks of the loop, in ms. */
export interface Stall {
  /** CPU time the main thread ran between two ticks. */
  cpuMs: number;
  /** Wall time between the same two ticks. */
  wallMs: number;
}

const SCHEDSTAT = '/proc/thread-self/schedstat';
const hasSchedstat = fs.existsSync(SCHEDSTAT);

/** CPU time of the main thread (Linux) or of the process, in ms. */
function mainThreadCpuMs(): number {
  if (hasSchedstat) return Number(fs.readFileSync(SCHEDSTAT, 'latin1').split(' ')[0]) / 1e6;
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Runs `work` under the monitor; returns its longest stall (by CPU time) and that gap's wall time. */
export async function longestStall(work: () => Promise<unknown>): Promise<Stall> {
  const stall: Stall = { cpuMs: 0, wallMs: 0 };
  let lastWall = performance.now();
  let lastCpu = mainThreadCpuMs();
  const tick = (): void => {
    const wall = performance.now();
    const cpu = mainThreadCpuMs();
    if (cpu - lastCpu > stall.cpuMs) Object.assign(stall, { cpuMs: cpu - lastCpu, wallMs: wall - lastWall });
    lastWall = wall;
    lastCpu = cpu;
  };
  const timer = setInterval(tick, 1);
  try {
    await work();
    tick();
  } finally {
    clearInterval(timer);
  }
  return stall;
}

/** "12.3 ms of CPU (45.6 ms of wall time)". */
export function describeStall(stall: Stall): string {
  return `${stall.cpuMs.toFixed(1)} ms of CPU (${stall.wallMs.toFixed(1)} ms of wall time)`;
}
