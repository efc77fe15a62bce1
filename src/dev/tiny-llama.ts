/**
 * A tiny random-weight LLaMA GGUF for tests, demos and benchmarks: the real architecture and
 * a real SentencePiece-style vocabulary (byte fallback, `▁`-prefixed pieces), at a size that
 * loads in milliseconds. Weights come from a seeded PRNG, so the same options give the same
 * file. The model talks nonsense; it exercises every code path of the LLM half. It is also the
 * starting point of a pretrained LLM (src/train/llm-pretrain.ts): the same writer with a
 * vocabulary of the training text's pieces and a smaller output layer.
 * @internal
 * @module
 */
import { quantizeRows } from '../gguf/quantize.js';
import { f32Bytes, GgufWriter } from '../gguf/writer.js';
import type { GgmlType } from '../gguf/types.js';
import { cachedFile, normalSource, randomMatrix } from './random.js';

/** Sizes and content of a tiny LLaMA. Every field has a default. */
export interface TinyLlamaOptions {
  /** `n_embd`; default 96 (the width of the tiny Video-LLaMA test checkpoints). */
  embeddingWidth?: number;
  /** Transformer blocks; default 2. */
  layers?: number;
  /** Attention heads; default 6 (head size 16). */
  heads?: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`); default `heads`. */
  kvHeads?: number;
  /** Hidden width of the SwiGLU feed-forward; default 256. */
  feedForwardWidth?: number;
  /** `llama.context_length`; default 2048. */
  contextLength?: number;
  /** PRNG seed of the weights; default 1. */
  seed?: number;
  /** Type of the attention and feed-forward matrices; default `'f32'`. */
  weightType?: GgmlType;
  /** Type of `token_embd.weight` (quantized in most released GGUFs); default `'f32'`. */
  tokenEmbeddingType?: GgmlType;
  /** Type of `output.weight`; default `'f32'`. */
  outputType?: GgmlType;
  /**
   * Tokens in the vocabulary: the tiny vocabulary padded with never-matched pieces `[pad<i>]`
   * (e.g. 32000, LLaMA's, so that the output layer and sampling cost what they do in a real
   * model); default the tiny vocabulary's own size. Smaller than it: RangeError.
   */
  vocabularySize?: number;
  /**
   * Build every matrix from a pool of {@link POOL_ROWS} random rows, quantized once and copied
   * in a pseudo-random order, instead of drawing every value: a 7B-shaped file then takes about
   * as long as writing it. Values keep their scale (no NaN/inf); only their independence is
   * lost, which speed and memory measurements cannot see. Default false.
   */
  pooledWeights?: boolean;
  /** `tokenizer.chat_template` to store (e.g. a LLaMA-2 chat template); default none. */
  chatTemplate?: string;
  /**
   * Pieces the vocabulary knows whole, each with every prefix of it (so that SentencePiece's
   * pairwise merges can build it up); a leading `▁` marks a word start. Default: a few hundred
   * English and prompt-template words ({@link DEFAULT_PIECES}).
   */
  pieces?: readonly string[];
  /**
   * Standard deviation of `output.weight`; default 3/√embeddingWidth, which makes random greedy
   * replies varied rather than flat. A model to be trained wants about 1/√embeddingWidth or less.
   */
  outputStd?: number;
  /** `general.name`; default `'tiny-llama (random weights)'`. */
  name?: string;
}

const RMS_EPS = 1e-5;
/** Bumped whenever the generated file changes for the same options, to invalidate caches. */
const GENERATOR_VERSION = 1;
/** Distinct random rows per (row length, type, scale) when {@link TinyLlamaOptions.pooledWeights} is on. */
export const POOL_ROWS = 512;

/** GGUF `tokenizer.ggml.token_type` values (llama.h `enum llama_token_type`). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/**
 * Words the vocabulary knows whole (as `▁word`); every prefix of each is a piece too, so that
 * SentencePiece's pairwise merges can build them up.
 */
const WORDS = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this from or had by ' +
  'word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look ' +
  'more day could go come did number sound no most people my over know water than call first who may down side ' +
  'been now find any new work part take get place made live where after back little only round man year came ' +
  'show every good me give our under name very through just form sentence great think say help low line ' +
  'Human Assistant USER ASSISTANT Video Image Close eyes open ears imagine based sound Now answer question ' +
  'seen heard helpful language vision assistant able understand visual content user provides assist variety ' +
  'tasks using natural Follow instructions carefully explain answers detail Please describe video image audio ' +
  'frames sampled seconds contains Give following Hello hello Yes yes No What Who Where Why How This There'
).split(' ');

/** Pieces without the word-start marker, for text glued to punctuation in the templates. */
const INNER_PIECES = ['INST', 'SYS', 'Video', 'Image', 'ImageHere', 'Vision', 'Human', 'Assistant', 'USER', 'ASSISTANT', '###', '<<', '>>', '</', '[/'];

/** The default {@link TinyLlamaOptions.pieces}: {@link WORDS} as word starts, then {@link INNER_PIECES}. */
export const DEFAULT_PIECES: readonly string[] = [...WORDS.map((word) => `▁${word}`), ...INNER_PIECES];

const ASCII_PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).filter((c) => c !== ' ');

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

/** Every prefix of `piece` of at least two characters (arrays of code points: `▁` is one). */
function prefixes(piece: string): string[] {
  const chars = [...piece];
  return chars.slice(1).map((_, i) => chars.slice(0, i + 2).join(''));
}

/**
 * `<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0x00>`..`<0xFF>`, then the single characters
 * and the prefix chains of `pieces`. Scores fall with the id, as in SentencePiece models
 * converted to GGUF.
 */
export function tinyLlamaVocabulary(size?: number, pieces: readonly string[] = DEFAULT_PIECES): Vocabulary {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
  }
  const known = new Set<string>(['▁', ...ASCII_PRINTABLE]);
  for (const piece of pieces) for (const p of prefixes(piece)) known.add(p);
  for (const piece of known) {
    tokens.push(piece);
    types.push(TokenType.NORMAL);
  }
  if (size !== undefined && size < tokens.length) throw new RangeError(`vocabularySize ${size} is below the tiny vocabulary's ${tokens.length} tokens`);
  // "[p" is no piece, so SentencePiece's merges can never build a padding piece from text.
  for (let i = 0; tokens.length < (size ?? 0); i++) {
    tokens.push(`[pad${i}]`);
    types.push(TokenType.NORMAL);
  }
  const scores = tokens.map((_, id) => (types[id] === TokenType.NORMAL ? -id : 0));
  return { tokens, scores, types };
}

/** Options that stay absent when unset, so that the cache keys of files made before they existed still hold. */
type OptionalOptions = 'chatTemplate' | 'vocabularySize' | 'outputType' | 'pooledWeights' | 'pieces' | 'outputStd' | 'name';
type ResolvedOptions = Required<Omit<TinyLlamaOptions, OptionalOptions>> & Pick<TinyLlamaOptions, OptionalOptions>;

/** The options with their defaults; the new options stay absent when unset, so older cache keys still hold. */
function resolve(options: TinyLlamaOptions): ResolvedOptions {
  const heads = options.heads ?? 6;
  return {
    embeddingWidth: options.embeddingWidth ?? 96,
    layers: options.layers ?? 2,
    heads,
    kvHeads: options.kvHeads ?? heads,
    feedForwardWidth: options.feedForwardWidth ?? 256,
    contextLength: options.contextLength ?? 2048,
    seed: options.seed ?? 1,
    weightType: options.weightType ?? 'f32',
    tokenEmbeddingType: options.tokenEmbeddingType ?? 'f32',
    chatTemplate: options.chatTemplate,
    vocabularySize: options.vocabularySize,
    outputType: options.outputType,
    pooledWeights: options.pooledWeights,
    pieces: options.pieces,
    outputStd: options.outputStd,
    name: options.name,
  };
}

/** Makes the bytes of a random matrix: `rows` rows of `rowLength` values of standard deviation `std`, as `type`. */
type MatrixSource = (rowLength: number, rows: number, type: GgmlType, std: number) => Uint8Array;

/** Every value drawn from `normal`, in file order. */
function drawnMatrices(normal: () => number): MatrixSource {
  return (rowLength, rows, type, std) => quantizeRows(randomMatrix(normal, rowLength * rows, std), rowLength, type);
}

/**
 * Rows copied from pools of {@link POOL_ROWS} drawn rows (one pool per row length, type and
 * scale), picked by a xorshift generator: fast enough for billions of weights.
 */
function pooledMatrices(normal: () => number, seed: number): MatrixSource {
  const pools = new Map<string, Uint8Array>();
  let state = (seed * 2654435761) >>> 0 || 1;
  const nextRow = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % POOL_ROWS;
  };
  return (rowLength, rows, type, std) => {
    const key = `${rowLength}/${type}/${std}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = quantizeRows(randomMatrix(normal, rowLength * POOL_ROWS, std), rowLength, type);
      pools.set(key, pool);
    }
    const rowBytes = pool.byteLength / POOL_ROWS;
    const out = new Uint8Array(rowBytes * rows);
    for (let r = 0; r < rows; r++) {
      const from = nextRow() * rowBytes;
      out.set(pool.subarray(from, from + rowBytes), r * rowBytes);
    }
    return out;
  };
}

/**
 * Writes a tiny random LLaMA to `file`.
 *
 * @example
 * ```ts
 * await writeTinyLlama('/tmp/tiny.gguf', { embeddingWidth: 64 });
 * const model = await VideoLlama.load({ llm: '/tmp/tiny.gguf' });
 * ```
 */
export async function writeTinyLlama(file: string, options: TinyLlamaOptions = {}): Promise<void> {
  const o = resolve(options);
  const E = o.embeddingWidth;
  const headSize = E / o.heads;
  if (!Number.isInteger(headSize) || o.heads % o.kvHeads !== 0) {
    throw new RangeError(`embeddingWidth ${E}, heads ${o.heads} and kvHeads ${o.kvHeads} do not divide evenly`);
  }
  const kvWidth = headSize * o.kvHeads;
  const vocab = tinyLlamaVocabulary(o.vocabularySize, o.pieces);
  const V = vocab.tokens.length;
  const normal = normalSource(o.seed);
  const random = o.pooledWeights ? pooledMatrices(normal, o.seed) : drawnMatrices(normal);
  const writer = new GgufWriter();
  const u32 = (value: number) => ({ type: 'u32', value }) as const;

  writer
    .set('general.architecture', { type: 'string', value: 'llama' })
    .set('general.name', { type: 'string', value: o.name ?? 'tiny-llama (random weights)' })
    .set('llama.context_length', u32(o.contextLength))
    .set('llama.embedding_length', u32(E))
    .set('llama.block_count', u32(o.layers))
    .set('llama.feed_forward_length', u32(o.feedForwardWidth))
    .set('llama.attention.head_count', u32(o.heads))
    .set('llama.attention.head_count_kv', u32(o.kvHeads))
    .set('llama.rope.dimension_count', u32(headSize))
    .set('llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: RMS_EPS })
    .set('tokenizer.ggml.model', { type: 'string', value: 'llama' })
    .set('tokenizer.ggml.tokens', { type: 'array', elementType: 'string', value: vocab.tokens })
    .set('tokenizer.ggml.scores', { type: 'array', elementType: 'f32', value: vocab.scores })
    .set('tokenizer.ggml.token_type', { type: 'array', elementType: 'i32', value: vocab.types })
    .set('tokenizer.ggml.unknown_token_id', u32(0))
    .set('tokenizer.ggml.bos_token_id', u32(1))
    .set('tokenizer.ggml.eos_token_id', u32(2))
    .set('tokenizer.ggml.add_bos_token', { type: 'bool', value: true })
    .set('tokenizer.ggml.add_eos_token', { type: 'bool', value: false });
  if (o.chatTemplate !== undefined) writer.set('tokenizer.chat_template', { type: 'string', value: o.chatTemplate });

  // Tensors are drawn in file order from one PRNG stream, so the file is a function of the options.
  const ones = (n: number) => () => f32Bytes(new Float32Array(n).fill(1));
  const matrix = (rowLength: number, rows: number, type: GgmlType) => () => random(rowLength, rows, type, 1 / Math.sqrt(rowLength));

  writer.addTensor('token_embd.weight', [E, V], o.tokenEmbeddingType, () => random(E, V, o.tokenEmbeddingType, 1));
  for (let i = 0; i < o.layers; i++) {
    const blk = `blk.${i}`;
    writer
      .addTensor(`${blk}.attn_norm.weight`, [E], 'f32', ones(E))
      .addTensor(`${blk}.attn_q.weight`, [E, E], o.weightType, matrix(E, E, o.weightType))
      .addTensor(`${blk}.attn_k.weight`, [E, kvWidth], o.weightType, matrix(E, kvWidth, o.weightType))
      .addTensor(`${blk}.attn_v.weight`, [E, kvWidth], o.weightType, matrix(E, kvWidth, o.weightType))
      .addTensor(`${blk}.attn_output.weight`, [E, E], o.weightType, matrix(E, E, o.weightType))
      .addTensor(`${blk}.ffn_norm.weight`, [E], 'f32', ones(E))
      .addTensor(`${blk}.ffn_gate.weight`, [E, o.feedForwardWidth], o.weightType, matrix(E, o.feedForwardWidth, o.weightType))
      .addTensor(`${blk}.ffn_up.weight`, [E, o.feedForwardWidth], o.weightType, matrix(E, o.feedForwardWidth, o.weightType))
      .addTensor(`${blk}.ffn_down.weight`, [o.feedForwardWidth, E], o.weightType, matrix(o.feedForwardWidth, E, o.weightType));
  }
  writer.addTensor('output_norm.weight', [E], 'f32', ones(E));
  const outputType = o.outputType ?? 'f32';
  writer.addTensor('output.weight', [E, V], outputType, () => {
    // Logits with a standard deviation of ~3 make greedy replies varied rather than flat. The
    // end-of-sequence row (id 2) is zero, so random replies run to maxTokens instead of
    // stopping at a random point (tests of stopping use stop strings or maxTokens).
    const out = random(E, V, outputType, o.outputStd ?? 3 / Math.sqrt(E));
    const rowBytes = out.byteLength / V;
    out.set(quantizeRows(new Float32Array(E), E, outputType), 2 * rowBytes);
    return out;
  });
  await writer.write(file);
}

/**
 * The path of a tiny LLaMA with these options in `cacheDir`, generating it on first use.
 * The file name holds a hash of the options and the generator version.
 */
export function cachedTinyLlama(cacheDir: string, options: TinyLlamaOptions = {}): Promise<string> {
  return cachedFile(cacheDir, 'tiny-llama', { v: GENERATOR_VERSION, ...resolve(options) }, (file) => writeTinyLlama(file, options));
}
