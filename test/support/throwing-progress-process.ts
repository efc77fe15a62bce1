/**
 * Loads and encodes with an `onProgress` that throws, in a process started with
 * `--force-node-api-uncaught-exceptions-policy=true` (where an exception escaping a native
 * callback ends the process). Prints, as JSON, what each call rejected with and whether the
 * projector still encodes afterwards. Arguments: a projector GGUF, a language model GGUF.
 */
import { LlmModel, Projector, VideoLlama } from '../../src/index.js';

const [projectorFile, llmFile] = process.argv.slice(2) as [string, string];

class UserError extends Error {}
const throwing = (): never => {
  throw new UserError('thrown by onProgress');
};

/** What `call` rejected with: the user's own error, or something else. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'resolved';
  } catch (error) {
    return error instanceof UserError ? 'user error' : `other: ${String((error as Error).message)}`;
  }
}

const results: Record<string, string> = {};
results.projectorLoad = await outcome(() => Projector.load(projectorFile, { threads: 1, onProgress: throwing }));
results.llmLoad = await outcome(() => LlmModel.load(llmFile, { onProgress: throwing }));
results.videoLlamaLoad = await outcome(() => VideoLlama.load({ llm: llmFile, projector: projectorFile, threads: 1, onProgress: throwing }));
const projector = await Projector.load(projectorFile, { threads: 1 });
const s = projector.info.imageSize;
const image = { tensor: new Float32Array(3 * s * s).fill(0.1), shape: [3, s, s] };
results.encodeImage = await outcome(() => projector.encodeImage(image, { onProgress: throwing }));
results.encodeAfter = await outcome(() => projector.encodeImage(image));
await projector.dispose();
console.log(JSON.stringify(results));
