/**
 * The memory of this process, for `RunCompleted` and the CLI's `--verbose` end line: its peak
 * resident size, the heap limit V8 was given, and the memory limit Node saw (0: none).
 */
import { getHeapStatistics } from 'node:v8';

const MB = 1024 * 1024;

/**
 * Node sizes the heap from the memory limit it sees (docs/performance.md), so these show in
 * production what the bench can only assume: whether the instance's memory reaches the process as
 * a limit, and how close a run came to it.
 */
export function workerMemory(): {
  workerPeakRssMb: number;
  workerHeapLimitMb: number;
  workerMemoryLimitMb: number;
} {
  const limit = process.constrainedMemory();
  return {
    workerPeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    workerHeapLimitMb: Math.round(getHeapStatistics().heap_size_limit / MB),
    // Node reports no limit as 0 on some versions and as a huge number on others.
    workerMemoryLimitMb: limit > 0 && limit < Number.MAX_SAFE_INTEGER ? Math.round(limit / MB) : 0,
  };
}
