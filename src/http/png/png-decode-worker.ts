// A decode worker of the pool in png-decoder.ts (piscina calls the default export per job).
import { decodePngJob, type PngDecodeJob, type PngDecodeResult } from './png-decode-job.js';

export default function decode(job: PngDecodeJob): PngDecodeResult {
  return decodePngJob(job);
}
