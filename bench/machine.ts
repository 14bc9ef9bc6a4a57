/**
 * Shared bits for benchmark reports: the machine line every section starts with. Statistics
 * (percentile, median) are loadtest/runner/stats.ts's, the project's one definition.
 */
import { cpus, totalmem } from 'node:os';

export function machineLine(command: string): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. Command: \`${command}\`.`;
}
