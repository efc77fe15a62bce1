/**
 * {@link TrainingExample}s (src/train/example.ts) from manifest entries: each entry's media through the frozen stages (cached,
 * {@link FeatureCache}), its caption or conversation through the original's prompt layout
 * ({@link stage1Layout} / {@link stage2Layout}), one example per branch the media feeds. Entries whose
 * media do not decode, or whose prompt does not fit the context, are bad entries (see
 * {@link BadEntries}).
 * @module
 */
import type { TemplateName } from '../chat/templates.js';
import { invalidArgument, throwIfAborted, VideoLlamaError } from '../errors.js';
import { probeFile } from '../media/probe.js';
import type { Projector } from '../projector.js';
import type { ExampleInput, LazyValues, TrainingExample } from './example.js';
import { type Branch, type FeatureCache, type FeatureInput, type FeatureRequest, type FrozenFeatures } from './features.js';
import { BadEntries, type ManifestEntry, type ManifestStage, type ManifestTurn } from './manifest.js';
import { type PromptLayout, type PromptTokenizer, type Stage2Format, stage1Layout, stage2Layout, type VicunaMasking } from './template.js';

/** Options of {@link buildExamples}. */
export interface BuildExamplesOptions {
  /** 1: captions; 2: conversations (the entries must be of that stage). */
  stage: ManifestStage;
  /** Entries of {@link readManifest}. */
  entries: readonly ManifestEntry[];
  /** The LLM's tokenizer ({@link modelTokenizer}). */
  tokenizer: PromptTokenizer;
  /** Stage 2's template, as the chat picks it for the LLM (`defaultTemplateName`); default `'vicuna'`. */
  template?: TemplateName;
  /** The projector whose frozen stages make the features (and whose query counts size the media runs). */
  projector: Projector;
  /** Where the frozen features (or media) are kept. */
  cache: FeatureCache;
  /**
   * What the examples carry: the frozen stage's output (`'features'`, default) or, for a trainer
   * that unfreezes an encoder or the BLIP-2 Q-Former, the preprocessed media — cached as f16 and
   * read from the cache at each training step (a loader in `features`), so that memory stays
   * bounded however many samples there are. One value for every branch, or one per branch.
   */
  input?: ExampleInput | Partial<Record<Branch, ExampleInput>>;
  /** Longest prompt, in positions; a longer one is a `too-long` bad entry. */
  contextSize: number;
  /** Where bad entries go; default a `'fail'` collector. */
  badEntries?: BadEntries;
  /** Branches to build; default every branch the projector has. */
  branches?: readonly Branch[];
  /** Frames of a video; default as {@link FeatureRequest.frames}. */
  frames?: number;
  /** Clips of a sound; default as {@link FeatureRequest.clips}. */
  clips?: number;
  /** Stage 2's prompt: the original's instruction data or the chat's (see {@link Stage2Format}); default `'original'`. */
  format?: Stage2Format;
  /** Stage 2's Vicuna masking; default `'aligned'` (see {@link VicunaMasking}). */
  masking?: VicunaMasking;
  /** Stage 2's system prompt; default the original's (see {@link Stage2LayoutOptions.system}). */
  system?: string;
  /** Stage 1's `end_sym`; default `'\n'`. */
  endSymbol?: string;
  /** Stage 1's `max_txt_len`; default 32. */
  maxTextTokens?: number;
  /** Cancels the build between entries and during encodes (ABORTED). */
  signal?: AbortSignal;
  /** Called after each entry with entries done and their total. */
  onProgress?: (done: number, total: number) => void;
}

/** The world's attributes each branch can perceive; a `description` needs all of its sample's facts perceivable. */
const PERCEIVED: Readonly<Record<Branch, ReadonlySet<string>>> = {
  video: new Set(['colour', 'shape', 'count', 'motion']),
  audio: new Set(['sound', 'pitch', 'beepCount']),
};

/** Decoding failures that make an entry bad rather than the run. */
const UNDECODABLE = new Set(['MEDIA_DECODE', 'NO_VIDEO_STREAM', 'NO_AUDIO_STREAM', 'FILE_NOT_FOUND', 'LIMIT_EXCEEDED']);

/**
 * The examples of `entries`, in entry order (for each entry: video branch, then audio). A media file
 * feeds the video branch when it has a picture (an image as a 1-frame video) and the audio branch
 * when it has sound; the world's `kind` says which, else the file is probed. In stage 2, turns
 * tagged with a world attribute are kept for the branches that perceive it (a branch left without
 * turns gets no example).
 *
 * Rejects with INVALID_MANIFEST (a bad entry under `'fail'`), ABORTED, FFMPEG_NOT_FOUND, NATIVE.
 */
export async function buildExamples(options: BuildExamplesOptions): Promise<TrainingExample[]> {
  const { entries, projector, signal } = options;
  if (!Number.isInteger(options.contextSize) || options.contextSize < 1) throw invalidArgument('contextSize', 'an integer >= 1', options.contextSize);
  const bad = options.badEntries ?? new BadEntries('fail');
  const wanted = new Set(options.branches ?? (['video', 'audio'] as const).filter((b) => (b === 'video' ? projector.info.hasVision : projector.info.hasAudio)));
  const examples: TrainingExample[] = [];
  for (const [done, entry] of entries.entries()) {
    throwIfAborted(signal, 'building training examples');
    const fault = (problem: 'undecodable-media' | 'too-long', message: string, cause?: unknown) =>
      bad.report({ manifest: entry.manifest, line: entry.line, problem, message }, cause);
    let inputs: FeatureInput[];
    const features: Fetched[] = [];
    try {
      inputs = (await entryInputs(entry)).filter((input) => wanted.has(input === 'audio' ? 'audio' : 'video'));
      for (const input of inputs) {
        features.push(await fetchInput(options, { media: entry.media, input, frames: options.frames, clips: options.clips, signal }));
      }
    } catch (error) {
      if (!(error instanceof VideoLlamaError && UNDECODABLE.has(error.code))) throw error;
      fault('undecodable-media', `${entry.media}: ${error.message}`, error);
      continue;
    }
    const built = inputs.flatMap((input, i) => {
      const layout = entryLayout(options, entry, input, features[i]!);
      return layout ? [{ layout, features: features[i]! }] : [];
    });
    const tooLong = built.find((b) => b.layout.tokens.length > options.contextSize);
    if (tooLong) {
      fault('too-long', `the ${tooLong.features.branch} prompt takes ${tooLong.layout.tokens.length} positions, over the context's ${options.contextSize}`);
    } else {
      for (const { layout, features: f } of built) {
        examples.push({
          branch: f.branch, input: inputOf(options, f.branch), features: f.values, units: f.units,
          tokens: layout.tokens, mediaOffset: layout.mediaOffset, labels: layout.labels,
        });
      }
    }
    options.onProgress?.(done + 1, entries.length);
  }
  return examples;
}

/** An entry's input for one branch: its description, and its values or their loader. */
type Fetched = Omit<FrozenFeatures, 'data'> & { values: Float32Array | LazyValues };

function inputOf(options: BuildExamplesOptions, branch: Branch): ExampleInput {
  return (typeof options.input === 'string' ? options.input : options.input?.[branch]) ?? 'features';
}

async function fetchInput(options: BuildExamplesOptions, request: FeatureRequest): Promise<Fetched> {
  if (inputOf(options, request.input === 'audio' ? 'audio' : 'video') === 'media') {
    const { load, ...described } = await options.cache.lazy(options.projector, { ...request, stage: 'media' });
    return { ...described, values: load };
  }
  const { data, ...described } = await options.cache.features(options.projector, request);
  return { ...described, values: data };
}

/** How the entry's media feed the branches, from its world kind or a probe. */
async function entryInputs(entry: ManifestEntry): Promise<FeatureInput[]> {
  switch (entry.kind) {
    case 'video': return ['video', 'audio'];
    case 'silent-video': return ['video'];
    case 'image': return ['image'];
    case 'audio': return ['audio'];
    case undefined: break;
  }
  const probe = await probeFile(entry.media);
  if (probe.kind === 'video') return probe.hasAudio ? ['video', 'audio'] : ['video'];
  if (probe.kind === 'image') return ['image'];
  if (probe.kind === 'audio') return ['audio'];
  throw new VideoLlamaError('NO_VIDEO_STREAM', `${entry.media} has neither picture nor sound`, { file: entry.media });
}

/** The prompt of one entry for one branch; undefined when no turn of its conversation is about what the branch perceives. */
function entryLayout(options: BuildExamplesOptions, entry: ManifestEntry, input: FeatureInput, features: Pick<FrozenFeatures, 'branch' | 'description'>): PromptLayout | undefined {
  const info = options.projector.info;
  const queries = features.branch === 'video' ? info.videoQueries : info.audioQueries;
  if (options.stage === 1) {
    return stage1Layout(options.tokenizer, { caption: entry.caption!, queries, endSymbol: options.endSymbol, maxTextTokens: options.maxTextTokens });
  }
  const conversation = entry.conversation!.filter((turn) => perceives(features.branch, turn, entry.facts));
  if (conversation.length === 0) return undefined;
  return stage2Layout(options.tokenizer, {
    template: options.template ?? 'vicuna', conversation, queries, system: options.system, masking: options.masking, format: options.format,
    media: { kind: input, description: features.description },
  });
}

/** Whether `branch` can answer `turn`: untagged turns always, a description only when every fact of its sample is perceivable. */
function perceives(branch: Branch, turn: ManifestTurn, facts: Record<string, string> | undefined): boolean {
  if (turn.attribute === undefined) return true;
  if (turn.attribute === 'description') return Object.keys(facts ?? {}).every((fact) => PERCEIVED[branch].has(fact));
  return PERCEIVED[branch].has(turn.attribute);
}
