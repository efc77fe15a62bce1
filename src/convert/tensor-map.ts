/**
 * The converter's half of docs/projector-format.md: which checkpoint tensors become which GGUF
 * tensors (names, ggml shapes, storage class), and the hyper-parameters read off tensor shapes.
 *
 * Checkpoints are resolved the way `VideoLLAMA.from_config` loads them (video_llama/models/video_llama.py):
 * EVA ViT-g into `visual_encoder.*`, the BLIP-2 checkpoint, ImageBind into `audio_encoder.*`, then the
 * vision-branch (`ckpt`) and audio-branch (`ckpt_2`) checkpoints with `strict=False` — a key present in a
 * later file overrides the earlier value, exactly as `load_state_dict` does.
 * @internal
 * @module
 */
import path from 'node:path';

import { invalidArgument, VideoLlamaError } from '../errors.js';
import type { GgufValue } from '../gguf/writer.js';
import { AUDIO_SAMPLE_RATE, VIDEO_LLAMA_PREPROCESSING as PREPROCESSING } from '../processors/constants.js';
import type { LazyTensor, PthFile } from './pth.js';

/** The five release files, by the part of the model they hold. */
export type CheckpointRole = 'evaVit' | 'blip2' | 'videoBranch' | 'imagebind' | 'audioBranch';

/** Load order, and the prefix under which each file's keys land in the VideoLLAMA state dict. */
const LOAD_ORDER: readonly { role: CheckpointRole; modelPrefix: string }[] = [
  { role: 'evaVit', modelPrefix: 'visual_encoder.' }, // eva_vit.py:create_eva_vit_g
  { role: 'blip2', modelPrefix: '' }, // Blip2Base.load_from_pretrained
  { role: 'imagebind', modelPrefix: 'audio_encoder.' }, // VideoLLAMA.__init__: audio_encoder.load_state_dict
  { role: 'videoBranch', modelPrefix: '' }, // from_config: cfg.ckpt
  { role: 'audioBranch', modelPrefix: '' }, // from_config: cfg.ckpt_2
];

/** How a tensor is stored: big matrices take the file's type; conv kernels f32 or f16; the rest f32. */
export type TensorStorage = 'matrix' | 'conv' | 'f32';

/** One GGUF tensor and where it comes from. */
export interface TensorSpec {
  /** GGUF tensor name. */
  readonly name: string;
  /** The file that normally holds it (named in MISSING_TENSOR errors). */
  readonly home: CheckpointRole;
  /** Its key in that file. */
  readonly key: string;
  /** ggml order. */
  readonly shape: readonly number[];
  /** Leading size-1 PyTorch dims dropped in the GGUF (`cls_token [1, 1, D]` → `[D]`). */
  readonly leadingOnes: number;
  readonly storage: TensorStorage;
}

/** The PyTorch shape a spec expects in the checkpoint. */
export function torchShape(spec: TensorSpec): number[] {
  return [...new Array<number>(spec.leadingOnes).fill(1), ...[...spec.shape].reverse()];
}

/** The files given for one conversion, resolved like VideoLLAMA's loading. */
export class CheckpointSet {
  constructor(private readonly files: Readonly<Partial<Record<CheckpointRole, PthFile>>>) {}

  /** The tensor the model ends up with for a VideoLLAMA state-dict key (last loaded file wins). */
  find(modelKey: string): { tensor: LazyTensor; file: string } | undefined {
    for (const { role, modelPrefix } of [...LOAD_ORDER].reverse()) {
      const file = this.files[role];
      if (!file || !modelKey.startsWith(modelPrefix)) continue;
      const tensor = file.tensors.get(modelKey.slice(modelPrefix.length));
      if (tensor) return { tensor, file: file.file };
    }
    return undefined;
  }

  /** Like {@link find} by home file and key; MISSING_TENSOR naming both when absent. */
  require(home: CheckpointRole, key: string): { tensor: LazyTensor; file: string } {
    const found = this.find(modelKey(home, key));
    if (found) return found;
    const file = this.files[home]?.file ?? home;
    throw new VideoLlamaError('MISSING_TENSOR', `tensor '${key}' not found in ${path.basename(file)}`, { key, file });
  }

  /** The PyTorch shape of a required tensor. */
  shape(home: CheckpointRole, key: string): readonly number[] {
    return this.require(home, key).tensor.shape;
  }

  /** How many numbered blocks `<prefix>{i}.` the home file's model keys have (highest index + 1). */
  countBlocks(home: CheckpointRole, prefix: string): number {
    const pattern = new RegExp(`^${escapeRegExp(modelKey(home, prefix))}(\\d+)\\.`);
    let count = 0;
    for (const { role, modelPrefix } of LOAD_ORDER) {
      for (const key of this.files[role]?.tensors.keys() ?? []) {
        const match = pattern.exec(modelPrefix + key);
        if (match) count = Math.max(count, Number(match[1]) + 1);
      }
    }
    return count;
  }
}

function modelKey(home: CheckpointRole, key: string): string {
  return LOAD_ORDER.find((l) => l.role === home)!.modelPrefix + key;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// Hyper-parameters

/** Preprocessing and epsilons fixed by the original code (not in any checkpoint). */
export const FIXED = {
  /** eva_vit.py: `partial(nn.LayerNorm, eps=1e-6)`; blip2.py `LayerNorm` default 1e-5. */
  vitEps: 1e-6,
  lnVisionEps: 1e-5,
  /** BLIP-2's image processor and ImageBind's audio defaults: their one home is processors/constants.ts. */
  imageMean: [...PREPROCESSING.imageMean],
  imageStd: [...PREPROCESSING.imageStd],
  sampleRate: AUDIO_SAMPLE_RATE,
  melBins: PREPROCESSING.melBins,
  targetFrames: PREPROCESSING.targetFrames,
  clipSeconds: PREPROCESSING.clipSeconds,
  fbankMean: PREPROCESSING.fbankMean,
  fbankStd: PREPROCESSING.fbankStd,
  /** imagebind_model.py: stem `nn.LayerNorm` default 1e-5; trunk and head norms 1e-6. */
  imagebindStemEps: 1e-5,
  imagebindEps: 1e-6,
  /** The audio stem's conv stride (imagebind_model.py `_create_modality_preprocessors`: stride=10). */
  audioPatchStride: 10,
  /** `LearnableLogitScaling(logit_scale_init=20.0, learnable=False)`, clipped at `max_logit_scale=100`. */
  logitScaleInit: 20,
  logitScaleMax: 100,
  /** BERT `layer_norm_eps`. */
  qformerEps: 1e-12,
} as const;

/**
 * Attention head counts of {@link ConvertOptions.heads}; each must divide its module's width
 * (else INVALID_ARGUMENT). An unset count is `width / head width` with the release head width
 * (EVA 88, Q-Formers and ImageBind 64) when that is a whole number of at least 4 heads (the
 * release's 16, 12 and 12), otherwise 4; see docs/converting.md.
 */
export interface HeadOptions {
  /** EVA ViT-g heads (`--vit-heads`); default 16 at the release width. */
  vit?: number;
  /** BLIP-2's Q-Former, and the video / audio Q-Formers unless set separately; default 12 at the release width. */
  qformer?: number;
  /** The video Q-Former's heads; default {@link HeadOptions.qformer}. */
  videoQformer?: number;
  /** The audio Q-Former's heads; default {@link HeadOptions.qformer}. */
  audioQformer?: number;
  /** ImageBind audio encoder heads; default 12 at the release width. */
  imagebind?: number;
}

/** Head widths of the release models: EVA ViT-g 1408/16, BERT-base (all Q-Formers) and ImageBind audio 768/12. */
export const RELEASE_HEAD_DIM = { vit: 88, qformer: 64, imagebind: 64 } as const;

/**
 * The head count used when no option gives one: `width / releaseHeadDim` when that is a whole
 * number of at least 4 heads (this gives the release 16 / 12 / 12 at release widths), otherwise
 * 4 heads (small test models). Widths that fit neither need the option.
 */
export function defaultHeads(width: number, releaseHeadDim: number, option: string): number {
  if (width % releaseHeadDim === 0 && width / releaseHeadDim >= 4) return width / releaseHeadDim;
  if (width % 4 === 0) return 4;
  throw new VideoLlamaError('INVALID_ARGUMENT', `cannot choose a head count for width ${width}; pass --${option}`, { width, option });
}

function heads(given: number | undefined, width: number, releaseHeadDim: number, option: string): number {
  if (given === undefined) return defaultHeads(width, releaseHeadDim, option);
  if (!Number.isInteger(given) || given <= 0 || width % given !== 0) {
    throw invalidArgument(option, `a positive divisor of the width ${width}`, given);
  }
  return given;
}

/** Sizes of the EVA ViT-g image encoder (GGUF prefix `v.`), read from the checkpoint. */
export interface VitHparams {
  /** Side of the square input image in pixels. */
  imageSize: number;
  /** Side of a square patch in pixels. */
  patchSize: number;
  /** `D`. */
  width: number;
  /** Blocks used (the checkpoint has one more). */
  depth: number;
  /** Attention heads. */
  heads: number;
  /** Hidden width of the MLP. */
  mlpWidth: number;
  /** Patch tokens `N` (pos_embed has N + 1 rows). */
  patches: number;
}

/** Sizes of one BLIP-2-style Q-Former (image, video or audio), read from the checkpoint. */
export interface QformerHparams {
  /** Hidden width `H`. */
  width: number;
  /** Attention heads. */
  heads: number;
  /** Transformer layers. */
  layers: number;
  /** Hidden width of the feed-forward block. */
  ffnWidth: number;
  /** Learned query tokens: the rows of its output. */
  queries: number;
  /** Layer `i` cross-attends to the encoder output when `i % crossAttentionFreq == 0` (BERT's `cross_attention_freq`). */
  crossAttentionFreq: number;
  /** Input width of the cross-attention key/value. */
  encoderWidth: number;
}

/** Sizes of ImageBind's audio encoder (GGUF prefix `a.`), read from the checkpoint. */
export interface ImagebindHparams {
  /** Hidden width `Da`. */
  width: number;
  /** Transformer blocks. */
  depth: number;
  /** Attention heads. */
  heads: number;
  /** Hidden width of the MLP. */
  mlpWidth: number;
  /** Width `Do` of the output head. */
  outWidth: number;
  /** Side of the square fbank patch (the stem's conv kernel). */
  patchSize: number;
  /** Stride of the stem's conv over the fbank. */
  patchStride: number;
  /** Patch tokens of one clip. */
  patches: number;
  /** The output logit scale: `exp(log_logit_scale)` clipped at 100, or 20 when the checkpoint has none. */
  logitScale: number;
}

/** Every size the projector's metadata records ({@link ConvertReport.hparams}). */
export interface ProjectorHparams {
  /** Width `E` of the produced embeddings: the LLM's embedding width. */
  llmWidth: number;
  /** The vision branch; absent when converted without it. */
  vision?: {
    /** The EVA ViT-g image encoder. */
    vit: VitHparams;
    /** BLIP-2's image Q-Former. */
    qformer: QformerHparams;
    /** Video-LLaMA's video Q-Former over the frames. */
    videoQformer: QformerHparams;
    /** Most frames a video may have (rows of the frame position embedding). */
    maxFrames: number;
  };
  /** The audio branch; absent when converted without it. */
  audio?: {
    /** ImageBind's audio encoder. */
    imagebind: ImagebindHparams;
    /** Video-LLaMA's audio Q-Former over the clips. */
    audioQformer: QformerHparams;
    /** Most audio clips (rows of the audio position embedding). */
    maxClips: number;
  };
}

/** Shape axis `axis` of a tensor that must be `rank`-d; TENSOR_SHAPE otherwise. */
function dim(ckpts: CheckpointSet, home: CheckpointRole, key: string, rank: number, axis: number): number {
  const { tensor, file } = ckpts.require(home, key);
  if (tensor.shape.length !== rank) {
    throw new VideoLlamaError('TENSOR_SHAPE', `tensor '${key}' in ${path.basename(file)} has shape [${tensor.shape.join(', ')}]; expected a ${rank}-d tensor`, {
      key, file, found: tensor.shape,
    });
  }
  return tensor.shape[axis]!;
}

function invalidLayout(home: CheckpointRole, ckptKey: string, problem: string): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `checkpoint for ${home}: ${problem} (at '${ckptKey}')`, { key: ckptKey });
}

function readVit(ckpts: CheckpointSet, headsOption: number | undefined): VitHparams {
  const width = dim(ckpts, 'evaVit', 'cls_token', 3, 2);
  const patchSize = dim(ckpts, 'evaVit', 'patch_embed.proj.weight', 4, 3);
  const patches = dim(ckpts, 'evaVit', 'pos_embed', 3, 1) - 1;
  const grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches) throw invalidLayout('evaVit', 'pos_embed', `${patches} patch positions do not form a square grid`);
  // create_eva_vit_g builds depth=39 from EVA-CLIP-g's 40 blocks: BLIP-2 uses the second-to-last layer.
  const blocks = ckpts.countBlocks('evaVit', 'blocks.');
  if (blocks < 2) throw invalidLayout('evaVit', 'blocks.', `${blocks} blocks; BLIP-2 uses all but the last, so at least 2 are needed`);
  return {
    imageSize: grid * patchSize,
    patchSize,
    width,
    depth: blocks - 1,
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.vit, 'vit-heads'),
    mlpWidth: dim(ckpts, 'evaVit', 'blocks.0.mlp.fc1.weight', 2, 0),
    patches,
  };
}

/** A Q-Former's layout in a checkpoint. */
interface QformerSource {
  /** GGUF prefix and metadata group. */
  gguf: 'qf' | 'vqf' | 'aqf';
  metadata: 'qformer' | 'video_qformer' | 'audio_qformer';
  home: CheckpointRole;
  /** `Qformer.bert.` / `video_Qformer.bert.` / `audio_Qformer.bert.` */
  bert: string;
  queryTokens: string;
  headsOption: string;
}

const QFORMERS = {
  image: { gguf: 'qf', metadata: 'qformer', home: 'blip2', bert: 'Qformer.bert.', queryTokens: 'query_tokens', headsOption: 'qformer-heads' },
  video: { gguf: 'vqf', metadata: 'video_qformer', home: 'videoBranch', bert: 'video_Qformer.bert.', queryTokens: 'video_query_tokens', headsOption: 'video-qformer-heads' },
  audio: { gguf: 'aqf', metadata: 'audio_qformer', home: 'audioBranch', bert: 'audio_Qformer.bert.', queryTokens: 'audio_query_tokens', headsOption: 'audio-qformer-heads' },
} as const satisfies Record<string, QformerSource>;

function readQformer(ckpts: CheckpointSet, source: QformerSource, headsOption: number | undefined): QformerHparams {
  const { home, bert } = source;
  const width = dim(ckpts, home, source.queryTokens, 3, 2);
  const layers = ckpts.countBlocks(home, `${bert}encoder.layer.`);
  if (layers < 1) throw new VideoLlamaError('MISSING_TENSOR', `no '${bert}encoder.layer.*' tensors in the ${home} checkpoint`, { key: `${bert}encoder.layer.0` });
  const cross = Array.from({ length: layers }, (_, i) => ckpts.find(`${bert}encoder.layer.${i}.crossattention.self.query.weight`) !== undefined);
  // BertLayer has cross-attention when layer_num % cross_attention_freq == 0.
  const freq = Array.from({ length: layers }, (_, f) => f + 1).find((f) => cross.every((has, i) => has === (i % f === 0)));
  if (freq === undefined) {
    throw invalidLayout(home, `${bert}encoder.layer.0.crossattention`, `cross-attention in layers [${cross.flatMap((has, i) => (has ? [i] : [])).join(', ')}] follows no every-n-layers pattern`);
  }
  return {
    width,
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.qformer, source.headsOption),
    layers,
    ffnWidth: dim(ckpts, home, `${bert}encoder.layer.0.intermediate_query.dense.weight`, 2, 0),
    queries: dim(ckpts, home, source.queryTokens, 3, 1),
    crossAttentionFreq: freq,
    encoderWidth: dim(ckpts, home, `${bert}encoder.layer.0.crossattention.self.key.weight`, 2, 1),
  };
}

/** The audio stem's stride: ImageBind's 10 when it explains the patch count, else the one that does. */
function audioPatchStride(kernel: number, patches: number): number | undefined {
  const count = (stride: number): number =>
    (Math.floor((FIXED.melBins - kernel) / stride) + 1) * (Math.floor((FIXED.targetFrames - kernel) / stride) + 1);
  const candidates = [FIXED.audioPatchStride, ...Array.from({ length: kernel }, (_, i) => i + 1)];
  return candidates.find((stride) => kernel <= FIXED.melBins && count(stride) === patches);
}

async function readImagebind(ckpts: CheckpointSet, headsOption: number | undefined): Promise<ImagebindHparams> {
  const pre = 'modality_preprocessors.audio.';
  const width = dim(ckpts, 'imagebind', `${pre}cls_token`, 3, 2);
  const patchSize = dim(ckpts, 'imagebind', `${pre}rgbt_stem.proj.weight`, 4, 3);
  const patches = dim(ckpts, 'imagebind', `${pre}pos_embedding_helper.pos_embed`, 3, 1) - 1;
  const patchStride = audioPatchStride(patchSize, patches);
  if (patchStride === undefined) {
    throw invalidLayout('imagebind', `${pre}pos_embedding_helper.pos_embed`, `${patches} patch positions fit no stride of a ${patchSize}×${patchSize} kernel over a ${FIXED.melBins}×${FIXED.targetFrames} fbank`);
  }
  return {
    width,
    depth: ckpts.countBlocks('imagebind', 'modality_trunks.audio.blocks.'),
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.imagebind, 'imagebind-heads'),
    mlpWidth: dim(ckpts, 'imagebind', 'modality_trunks.audio.blocks.0.mlp.fc1.weight', 2, 0),
    outWidth: dim(ckpts, 'imagebind', 'modality_heads.audio.2.weight', 2, 0),
    patchSize,
    patchStride,
    patches,
    logitScale: await logitScale(ckpts),
  };
}

/** `clip(exp(log_logit_scale), max=100)` from the buffer, or ImageBind's fixed 20 when no file has it. */
async function logitScale(ckpts: CheckpointSet): Promise<number> {
  const found = ckpts.find('audio_encoder.modality_postprocessors.audio.1.log_logit_scale');
  if (!found) return FIXED.logitScaleInit;
  const values = await found.tensor.read();
  if (values.length !== 1 || !Number.isFinite(values[0])) {
    throw invalidLayout('imagebind', 'modality_postprocessors.audio.1.log_logit_scale', 'not a finite scalar');
  }
  return Math.min(Math.exp(values[0]!), FIXED.logitScaleMax);
}

/** Which branches to convert. */
export interface BranchSelection {
  vision: boolean;
  audio: boolean;
}

/** Reads every hyper-parameter from tensor shapes (and the logit-scale buffer). */
export async function readHparams(ckpts: CheckpointSet, branches: BranchSelection, headOptions: HeadOptions): Promise<ProjectorHparams> {
  let llmWidth: number | undefined;
  let vision: ProjectorHparams['vision'];
  let audio: ProjectorHparams['audio'];
  if (branches.vision) {
    vision = {
      vit: readVit(ckpts, headOptions.vit),
      qformer: readQformer(ckpts, QFORMERS.image, headOptions.qformer),
      videoQformer: readQformer(ckpts, QFORMERS.video, headOptions.videoQformer ?? headOptions.qformer),
      maxFrames: dim(ckpts, 'videoBranch', 'video_frame_position_embedding.weight', 2, 0),
    };
    llmWidth = dim(ckpts, 'videoBranch', 'llama_proj.weight', 2, 0);
  }
  if (branches.audio) {
    audio = {
      imagebind: await readImagebind(ckpts, headOptions.imagebind),
      audioQformer: readQformer(ckpts, QFORMERS.audio, headOptions.audioQformer ?? headOptions.qformer),
      maxClips: dim(ckpts, 'audioBranch', 'audio_position_embedding.weight', 2, 0),
    };
    // With both branches, the vision branch fixes E and the audio projection is shape-checked against it.
    llmWidth ??= dim(ckpts, 'audioBranch', 'audio_llama_proj.weight', 2, 0);
  }
  if (llmWidth === undefined) throw invalidArgument('branches', 'at least one of vision and audio', branches);
  return { llmWidth, vision, audio };
}

// ---------------------------------------------------------------------------------------------
// Tensor table (docs/projector-format.md, "Tensors")

function spec(name: string, home: CheckpointRole, key: string, shape: readonly number[], storage: TensorStorage, leadingOnes = 0): TensorSpec {
  return { name, home, key, shape, leadingOnes, storage };
}

/** A Linear layer: `weight [out, in]` (ggml `[in, out]`, the file's type) and `bias [out]` (f32). */
function linear(name: string, home: CheckpointRole, key: string, inWidth: number, outWidth: number, bias = true): TensorSpec[] {
  const weight = spec(`${name}.weight`, home, `${key}.weight`, [inWidth, outWidth], 'matrix');
  return bias ? [weight, spec(`${name}.bias`, home, `${key}.bias`, [outWidth], 'f32')] : [weight];
}

/** A LayerNorm's `weight` and `bias`, both `[width]` f32. */
function norm(name: string, home: CheckpointRole, key: string, width: number): TensorSpec[] {
  return [spec(`${name}.weight`, home, `${key}.weight`, [width], 'f32'), spec(`${name}.bias`, home, `${key}.bias`, [width], 'f32')];
}

function vitTensors(h: VitHparams): TensorSpec[] {
  const { width: D, mlpWidth: F, patchSize: P } = h;
  const home = 'evaVit';
  const out = [
    spec('v.patch_embd.weight', home, 'patch_embed.proj.weight', [P, P, 3, D], 'conv'),
    spec('v.patch_embd.bias', home, 'patch_embed.proj.bias', [D], 'f32'),
    spec('v.cls_token', home, 'cls_token', [D], 'f32', 2),
    spec('v.pos_embd', home, 'pos_embed', [D, h.patches + 1], 'f32', 1),
  ];
  for (let i = 0; i < h.depth; i++) {
    const b = `blocks.${i}.`;
    const v = `v.blk.${i}.`;
    out.push(
      ...norm(`${v}ln1`, home, `${b}norm1`, D),
      spec(`${v}attn_qkv.weight`, home, `${b}attn.qkv.weight`, [D, 3 * D], 'matrix'),
      spec(`${v}attn_q.bias`, home, `${b}attn.q_bias`, [D], 'f32'),
      spec(`${v}attn_v.bias`, home, `${b}attn.v_bias`, [D], 'f32'),
      ...linear(`${v}attn_out`, home, `${b}attn.proj`, D, D),
      ...norm(`${v}ln2`, home, `${b}norm2`, D),
      ...linear(`${v}ffn_up`, home, `${b}mlp.fc1`, D, F),
      ...linear(`${v}ffn_down`, home, `${b}mlp.fc2`, F, D),
    );
  }
  return out;
}

function qformerTensors(source: QformerSource, h: QformerHparams): TensorSpec[] {
  const { home, bert, gguf: X } = source;
  const { width: H, ffnWidth: I, encoderWidth: Enc } = h;
  const out = [spec(`${X}.query_tokens`, home, source.queryTokens, [H, h.queries], 'f32', 1), ...norm(`${X}.emb_ln`, home, `${bert}embeddings.LayerNorm`, H)];
  for (let i = 0; i < h.layers; i++) {
    const l = `${bert}encoder.layer.${i}.`;
    const b = `${X}.blk.${i}.`;
    out.push(
      ...linear(`${b}self_q`, home, `${l}attention.self.query`, H, H),
      ...linear(`${b}self_k`, home, `${l}attention.self.key`, H, H),
      ...linear(`${b}self_v`, home, `${l}attention.self.value`, H, H),
      ...linear(`${b}self_out`, home, `${l}attention.output.dense`, H, H),
      ...norm(`${b}self_ln`, home, `${l}attention.output.LayerNorm`, H),
    );
    if (i % h.crossAttentionFreq === 0) {
      out.push(
        ...linear(`${b}cross_q`, home, `${l}crossattention.self.query`, H, H),
        ...linear(`${b}cross_k`, home, `${l}crossattention.self.key`, Enc, H),
        ...linear(`${b}cross_v`, home, `${l}crossattention.self.value`, Enc, H),
        ...linear(`${b}cross_out`, home, `${l}crossattention.output.dense`, H, H),
        ...norm(`${b}cross_ln`, home, `${l}crossattention.output.LayerNorm`, H),
      );
    }
    out.push(
      ...linear(`${b}ffn_up`, home, `${l}intermediate_query.dense`, H, I),
      ...linear(`${b}ffn_down`, home, `${l}output_query.dense`, I, H),
      ...norm(`${b}ffn_ln`, home, `${l}output_query.LayerNorm`, H),
    );
  }
  return out;
}

function imagebindTensors(h: ImagebindHparams): TensorSpec[] {
  const { width: Da, mlpWidth: F, outWidth: Do, patchSize: K } = h;
  const home = 'imagebind';
  const pre = 'modality_preprocessors.audio.';
  const out = [
    spec('a.patch_embd.weight', home, `${pre}rgbt_stem.proj.weight`, [K, K, 1, Da], 'conv'),
    ...norm('a.patch_ln', home, `${pre}rgbt_stem.norm_layer`, Da),
    spec('a.cls_token', home, `${pre}cls_token`, [Da], 'f32', 2),
    spec('a.pos_embd', home, `${pre}pos_embedding_helper.pos_embed`, [Da, 1 + h.patches], 'f32', 1),
  ];
  for (let i = 0; i < h.depth; i++) {
    const b = `modality_trunks.audio.blocks.${i}.`;
    const a = `a.blk.${i}.`;
    out.push(
      ...norm(`${a}ln1`, home, `${b}norm_1`, Da),
      spec(`${a}attn_qkv.weight`, home, `${b}attn.in_proj_weight`, [Da, 3 * Da], 'matrix'),
      spec(`${a}attn_qkv.bias`, home, `${b}attn.in_proj_bias`, [3 * Da], 'f32'),
      spec(`${a}attn_bias_k`, home, `${b}attn.bias_k`, [Da], 'f32', 2),
      spec(`${a}attn_bias_v`, home, `${b}attn.bias_v`, [Da], 'f32', 2),
      ...linear(`${a}attn_out`, home, `${b}attn.out_proj`, Da, Da),
      ...norm(`${a}ln2`, home, `${b}norm_2`, Da),
      ...linear(`${a}ffn_up`, home, `${b}mlp.fc1`, Da, F),
      ...linear(`${a}ffn_down`, home, `${b}mlp.fc2`, F, Da),
    );
  }
  out.push(...norm('a.head_ln', home, 'modality_heads.audio.0', Da), ...linear('a.head_proj', home, 'modality_heads.audio.2', Da, Do, false));
  return out;
}

/** Every tensor of the projector, in file order. */
export function projectorTensors(h: ProjectorHparams): TensorSpec[] {
  const out: TensorSpec[] = [];
  if (h.vision) {
    const { vit, qformer, videoQformer, maxFrames } = h.vision;
    out.push(
      ...vitTensors(vit),
      ...norm('v.ln_vision', 'blip2', 'ln_vision', vit.width),
      ...qformerTensors(QFORMERS.image, { ...qformer, encoderWidth: vit.width }),
      ...qformerTensors(QFORMERS.video, { ...videoQformer, encoderWidth: qformer.width }),
      spec('vid.frame_pos_embd', 'videoBranch', 'video_frame_position_embedding.weight', [qformer.width, maxFrames], 'f32'),
      ...linear('vid.proj', 'videoBranch', 'llama_proj', videoQformer.width, h.llmWidth),
    );
  }
  if (h.audio) {
    const { imagebind, audioQformer, maxClips } = h.audio;
    out.push(
      ...imagebindTensors(imagebind),
      ...qformerTensors(QFORMERS.audio, { ...audioQformer, encoderWidth: imagebind.outWidth }),
      spec('aud.pos_embd', 'audioBranch', 'audio_position_embedding.weight', [imagebind.outWidth, maxClips], 'f32'),
      ...linear('aud.proj', 'audioBranch', 'audio_llama_proj', audioQformer.width, h.llmWidth),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Metadata (docs/projector-format.md, "Metadata")

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });

function qformerMetadata(source: QformerSource, h: QformerHparams): [string, GgufValue][] {
  const p = `vl.${source.metadata}.`;
  return [
    [`${p}width`, u32(h.width)],
    [`${p}heads`, u32(h.heads)],
    [`${p}layers`, u32(h.layers)],
    [`${p}ffn_width`, u32(h.ffnWidth)],
    [`${p}queries`, u32(h.queries)],
    [`${p}cross_attention_freq`, u32(h.crossAttentionFreq)],
    [`${p}encoder_width`, u32(h.encoderWidth)],
    [`${p}eps`, f32(FIXED.qformerEps)],
  ];
}

/** The projector's metadata (without `general.file_type`, which depends on the output type). */
export function projectorMetadata(h: ProjectorHparams): [string, GgufValue][] {
  const out: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'video-llama-projector' }],
    ['vl.llm_width', u32(h.llmWidth)],
    ['vl.has_vision', { type: 'bool', value: h.vision !== undefined }],
    ['vl.has_audio', { type: 'bool', value: h.audio !== undefined }],
  ];
  if (h.vision) {
    const { vit, qformer, videoQformer, maxFrames } = h.vision;
    out.push(
      ['vl.vision.image_size', u32(vit.imageSize)],
      ['vl.vision.patch_size', u32(vit.patchSize)],
      ['vl.vision.width', u32(vit.width)],
      ['vl.vision.depth', u32(vit.depth)],
      ['vl.vision.heads', u32(vit.heads)],
      ['vl.vision.mlp_width', u32(vit.mlpWidth)],
      ['vl.vision.eps', f32(FIXED.vitEps)],
      ['vl.vision.ln_vision_eps', f32(FIXED.lnVisionEps)],
      ['vl.vision.image_mean', { type: 'array', elementType: 'f32', value: FIXED.imageMean }],
      ['vl.vision.image_std', { type: 'array', elementType: 'f32', value: FIXED.imageStd }],
      ['vl.video.max_frames', u32(maxFrames)],
      ...qformerMetadata(QFORMERS.image, qformer),
      ...qformerMetadata(QFORMERS.video, videoQformer),
    );
  }
  if (h.audio) {
    const { imagebind: ib, audioQformer, maxClips } = h.audio;
    out.push(
      ['vl.audio.sample_rate', u32(FIXED.sampleRate)],
      ['vl.audio.mel_bins', u32(FIXED.melBins)],
      ['vl.audio.target_frames', u32(FIXED.targetFrames)],
      ['vl.audio.clip_seconds', f32(FIXED.clipSeconds)],
      ['vl.audio.fbank_mean', f32(FIXED.fbankMean)],
      ['vl.audio.fbank_std', f32(FIXED.fbankStd)],
      ['vl.audio.max_clips', u32(maxClips)],
      ['vl.imagebind.width', u32(ib.width)],
      ['vl.imagebind.depth', u32(ib.depth)],
      ['vl.imagebind.heads', u32(ib.heads)],
      ['vl.imagebind.mlp_width', u32(ib.mlpWidth)],
      ['vl.imagebind.out_width', u32(ib.outWidth)],
      ['vl.imagebind.patch_size', u32(ib.patchSize)],
      ['vl.imagebind.patch_stride', u32(ib.patchStride)],
      ['vl.imagebind.stem_eps', f32(FIXED.imagebindStemEps)],
      ['vl.imagebind.eps', f32(FIXED.imagebindEps)],
      ['vl.imagebind.logit_scale', f32(ib.logitScale)],
      ...qformerMetadata(QFORMERS.audio, audioQformer),
    );
  }
  return out;
}
