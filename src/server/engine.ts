/**
 * The server's one door into the library: loading the model, probing and encoding media,
 * streaming a chat reply, counting tokens. Every call the server makes into video-llama goes
 * through here, so a change of the library's object API touches this file only.
 * @module
 */
import { EncodeCache, type EncodeCacheOptions, type EncodeCacheStats } from '../cache/encode-cache.js';
import { constantClipRanges } from '../processors/clip-sampling.js';
import { jsonSchemaGrammar, type JsonSchema } from '../chat/json-schema.js';
import type { Chat, StopReason } from '../chat/session.js';
import { VideoLlamaError } from '../errors.js';
import { probe as probeMedia } from '../media/probe.js';
import type { MediaEmbedding } from '../media-embedding.js';
import type { EncodeProgress } from '../projector.js';
import { VideoLlama } from '../video-llama.js';

/** What to load: the library's load options that a server exposes. */
export interface EngineOptions {
  /** Language model GGUF. */
  llm: string;
  /** Projector GGUF (`video-llama convert`); without it the server chats about text only. */
  projector?: string;
  /** CPU threads; default: all cores. */
  threads?: number;
  /** KV cells of the context, shared by the replies running at once; default the library's. */
  contextSize?: number;
  /** Replies that may run at once (one context sequence each): the server's `concurrency`; default 1. */
  sequences?: number;
  /** LLM layers on a GPU build; default libllama's. */
  gpuLayers?: number;
  /**
   * The library's encode cache (docs/caching.md): `memoryBytes` of embeddings in memory and,
   * with `cacheDir`, an on-disk store that survives restarts and that replicas on one machine
   * share. Default: memory only, the library's bound.
   */
  encodeCache?: EncodeCacheOptions;
}

/** The encode cache's counters, and the encodes it ran, for `/metrics`. */
export interface EngineCacheStats extends EncodeCacheStats {
  /** Encodes run (the cache's misses, failed ones included). */
  encodes: number;
  /** Seconds those encodes took (decoding included, waiting in the projector's queue not). */
  encodeSeconds: number;
}

/** The loaded model, as `/v1/models` and the page describe it. */
export interface EngineDescription {
  /** libllama's one-line description, e.g. `llama 7B Q4_K - Medium`. */
  description: string;
  /** Positions of the context. */
  contextSize: number;
  /** The projector can encode images and video. */
  vision: boolean;
  /** The projector can encode audio. */
  audio: boolean;
}

/** What ffmpeg says a media file holds, as far as the server's limits care. */
export interface MediaFacts {
  /** The file has a picture (a video stream, or an image). */
  hasVideo: boolean;
  /** The file has sound. */
  hasAudio: boolean;
  /** A still image (one frame), as the library's probe routes it. */
  still: boolean;
  /** Frame width in pixels, when there is a picture. */
  width?: number;
  /** Frame height in pixels, when there is a picture. */
  height?: number;
  /** Duration in seconds, when the container states one. */
  durationSeconds?: number;
}

/** How to encode a file: `media` = its picture and its sound, as the original's audio-visual demo. */
export type EncodeKind = 'image' | 'video' | 'audio' | 'media';

/** Encoded media, ready to go into a message. */
export interface EncodedMedia {
  /** The embeddings, in the order the prompt takes them (`[audio, video]` for a video with sound). */
  embeddings: MediaEmbedding[];
  /** Prompt positions the embeddings take. */
  positions: number;
  /** Seconds of the sampled video frames, in order (videos only). */
  frameTimes?: number[];
  /** Spans in seconds of the audio clips the audio encoder heard (files with sound only). */
  audioClips?: {
    /** Start of the clip, seconds. */
    start: number;
    /** End of the clip, seconds. */
    end: number;
  }[];
}

/** A user message with its media. */
export interface EngineMessage {
  /** The user's words. */
  text: string;
  /** The media the words are about. */
  media: EncodedMedia[];
}

/** Sampling of one reply; undefined fields take the library's defaults (the original's). */
export interface Sampling {
  /** Most tokens to generate. */
  maxTokens?: number;
  /** Softmax temperature; 0 is greedy. */
  temperature?: number;
  /** Nucleus sampling threshold. */
  topP?: number;
  /** Sampler seed. */
  seed?: number;
  /** Frequency penalty in [-2, 2]. */
  frequencyPenalty?: number;
  /** Presence penalty in [-2, 2]. */
  presencePenalty?: number;
  /** Extra stop strings: the reply ends before the first one. */
  stop: readonly string[];
  /** A JSON schema the reply follows (`response_format`). */
  jsonSchema?: JsonSchema;
}

/** One reply to produce: a conversation whose last message is the user's. */
export interface ReplyRequest {
  /** System prompt; default the template's choice for the media of the first message. */
  system?: string;
  /** Earlier exchanges, oldest first. */
  history: {
    /** What the user said in that turn. */
    user: EngineMessage;
    /** What the model answered. */
    assistant: string;
  }[];
  /** The message to answer. */
  message: EngineMessage;
  /** How to sample the reply. */
  sampling: Sampling;
  /** Stops the reply within one token (the library rejects with ABORTED). */
  signal: AbortSignal;
}

/** How a reply went. */
export interface ReplyResult {
  /** Prompt positions: text tokens plus media vectors, history included. */
  promptPositions: number;
  /** Tokens sampled. */
  completionTokens: number;
  /** `stop`: the model ended or a stop string came; `length`: max tokens or the context ran out. */
  finishReason: 'stop' | 'length';
  /** Milliseconds spent generating (after the prompt). */
  generationMs: number;
}

const FINISH: Readonly<Record<StopReason, ReplyResult['finishReason']>> = {
  eos: 'stop', stopString: 'stop', maxTokens: 'length', contextFull: 'length',
};

/** Video-LLaMA's frame count and clip count per file (the library's defaults). */
const FRAMES = 8;
const CLIPS = 8;

/** Seconds of each numbered frame in the library's description of a sampled video. */
function sampledFrameTimes(embedding: MediaEmbedding): number[] | undefined {
  // The description is the text the model reads after the video: "… sampled at 0.0, 1.2 seconds."
  const listed = /sampled at ([\d., ]+) seconds/.exec(embedding.description ?? '')?.[1];
  return listed?.split(',').map((s) => Number(s.trim()));
}

/** The library's encode cache, also timing the encodes it runs (its misses) for `/metrics`. */
class TimedEncodeCache extends EncodeCache {
  encodes = 0;
  encodeSeconds = 0;

  override getOrCompute(key: string, compute: () => Promise<MediaEmbedding[]>): Promise<MediaEmbedding[]> {
    return super.getOrCompute(key, async () => {
      const started = performance.now();
      try {
        return await compute();
      } finally {
        this.encodes++;
        this.encodeSeconds += (performance.now() - started) / 1000;
      }
    });
  }
}

/** The library's loaded model behind the narrow interface the server needs. */
export class Engine {
  private constructor(private readonly model: VideoLlama, private readonly cache: TimedEncodeCache) {}

  /** Loads the model (and projector, with its encode cache) off the event loop. */
  static async load(options: EngineOptions): Promise<Engine> {
    const { encodeCache, ...load } = options;
    const cache = new TimedEncodeCache(encodeCache);
    return new Engine(await VideoLlama.load({ ...load, cache }), cache);
  }

  /** What the encode cache did since loading: a second question about a file costs no encode. */
  cacheStats(): EngineCacheStats {
    return { ...this.cache.stats, encodes: this.cache.encodes, encodeSeconds: this.cache.encodeSeconds };
  }

  /** What is loaded. */
  describe(): EngineDescription {
    const info = this.model.projector?.info;
    return {
      description: this.model.model.description,
      contextSize: this.model.context.size,
      vision: info?.hasVision ?? false,
      audio: info?.hasAudio ?? false,
    };
  }

  /** Streams and sizes of a media file (path or bytes). Rejects with the library's MEDIA_DECODE for a file ffmpeg cannot open. */
  async probe(input: string | Uint8Array, signal: AbortSignal): Promise<MediaFacts> {
    const probe = await probeMedia(input, { signal });
    return {
      hasVideo: probe.hasVideo,
      hasAudio: probe.hasAudio,
      still: probe.kind === 'image',
      width: probe.video?.width,
      height: probe.video?.height,
      durationSeconds: probe.durationSeconds,
    };
  }

  /**
   * Encodes a media file (path or bytes) as `kind`, or finds it in the encode cache (same
   * content, same kind: no decode, no encode); `facts` (from {@link Engine.probe}) places the
   * audio clips.
   */
  async encode(input: string | Uint8Array, kind: EncodeKind, facts: MediaFacts,
    options: { signal: AbortSignal; onProgress?: (fraction: number) => void }): Promise<EncodedMedia> {
    const encodeOptions = { signal: options.signal, onProgress: stageProgress(options.onProgress, kind === 'media' && facts.hasAudio ? 2 : 1) };
    const embeddings = kind === 'image' ? [await this.model.encodeImage(input, encodeOptions)]
      : kind === 'audio' ? [await this.model.encodeAudio(input, { ...encodeOptions, clips: CLIPS })]
        : kind === 'video' ? [await this.model.encodeVideo(input, { ...encodeOptions, frames: FRAMES })]
          : await this.model.encodeMedia(input, { ...encodeOptions, frames: FRAMES, clips: CLIPS });
    const video = embeddings.find((e) => e.kind === 'video');
    const heard = embeddings.some((e) => e.kind === 'audio') && facts.durationSeconds !== undefined;
    return {
      embeddings,
      positions: embeddings.reduce((sum, e) => sum + e.tokens, 0),
      frameTimes: video && sampledFrameTimes(video),
      audioClips: heard ? audioClipSpans(facts.durationSeconds!, this.model.projector!.info.clipSeconds) : undefined,
    };
  }

  /** Generates the reply to `request.message`, passing its text to `onText` piece by piece. Rejects with the library's errors (ABORTED, CONTEXT_OVERFLOW, …). */
  async reply(request: ReplyRequest, onText: (text: string) => void): Promise<ReplyResult> {
    // One sequence per reply, given back (its cells cleared) when the reply ends.
    const chat = this.model.createChat({
      template: this.model.defaultTemplate,
      system: request.system,
      history: request.history.map((turn) => ({ user: libraryMessage(turn.user), assistant: turn.assistant })),
    });
    try {
      await this.streamReply(chat, request, onText).catch((error: unknown) => {
        // A JSON reply cut off (max tokens, full context) is what OpenAI sends too: the text so far, finish_reason 'length'.
        if (!isLibraryError(error, 'INVALID_OUTPUT')) throw error;
      });
      const stats = chat.lastStats!;
      return {
        promptPositions: stats.promptItems,
        completionTokens: stats.generatedTokens,
        finishReason: FINISH[stats.stopReason],
        generationMs: stats.generationMs,
      };
    } finally {
      await chat.dispose();
    }
  }

  private async streamReply(chat: Chat, request: ReplyRequest, onText: (text: string) => void): Promise<void> {
    for await (const piece of chat.stream(libraryMessage(request.message), { ...request.sampling, signal: request.signal })) onText(piece);
  }

  /** Tokens of `text` without BOS. */
  countTokens(text: string): number {
    return this.model.model.tokenize(text, { addBos: false }).length;
  }

  /** Frees the model; waits for running work. */
  dispose(): Promise<void> {
    return this.model.dispose();
  }
}

function libraryMessage(message: EngineMessage): { text: string; media: MediaEmbedding[] } {
  return { text: message.text, media: message.media.flatMap((m) => m.embeddings) };
}

/** The encoder's stage progress as one fraction over `encodes` consecutive encodes. */
function stageProgress(onProgress: ((fraction: number) => void) | undefined, encodes: number): ((progress: EncodeProgress) => void) | undefined {
  if (!onProgress) return undefined;
  let done = 0;
  return (progress) => {
    if (progress.completed === progress.total) done++;
    onProgress(Math.min(1, (done + (progress.completed < progress.total ? progress.completed / progress.total : 0)) / encodes));
  };
}

/** The clips ImageBind's sampler takes from `durationSeconds` of sound (the container's duration, to 10 ms). */
function audioClipSpans(durationSeconds: number, clipSeconds: number): { start: number; end: number }[] {
  const rate = 16000;
  return constantClipRanges(Math.round(durationSeconds * rate), rate, clipSeconds, CLIPS)
    .map((clip) => ({ start: clip.sampleStart / rate, end: Math.min(durationSeconds, clip.sampleEnd / rate) }));
}

/** Whether `error` is the library's error with one of `codes`. */
export function isLibraryError(error: unknown, ...codes: string[]): error is VideoLlamaError {
  return error instanceof VideoLlamaError && codes.includes(error.code);
}

/** The text that stands for media in a prompt: a client may not send it as text. */
export { MEDIA_PLACEHOLDER } from '../chat/templates.js';

/** Rejects with the library's INVALID_ARGUMENT, naming `name`, for a schema no reply can be made to follow. */
export async function checkJsonSchema(schema: JsonSchema, name: string): Promise<void> {
  await jsonSchemaGrammar(schema, name);
}
