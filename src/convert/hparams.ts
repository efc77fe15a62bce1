/**
 * The projector's hyper-parameters, read off the checkpoints' tensor shapes (and ImageBind's
 * logit-scale buffer), plus the constants fixed by the original code.
 * @internal
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';
import { AUDIO_SAMPLE_RATE, VIDEO_LLAMA_PREPROCESSING as PREPROCESSING } from '../processors/constants.js';
import { QFORMER_LAYOUTS, type CheckpointRole, type CheckpointSet, type QformerKind } from './checkpoints.js';
import { chooseVitDepth, type VitDepthChoice } from './vit-depth.js';


/** Preprocessing and epsilons fixed by the original code (not in any checkpoint). */
export const FIXED = {
  /** eva_vit.py: `partial(nn.LayerNorm, eps=1e-6)`; blip2.py `LayerNorm` default 1e-5. */
  vitEps: 1e-6,
  lnVisionEps: 1e-5,
  /** BLIP-2's image processor and ImageBind's audio defaults: their one home is processors/constants.ts. */
  imageMean: PREPROCESSING.imageMean,
  imageStd: PREPROCESSING.imageStd,
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
/** The {@link HeadOptions} field of each `video-llama convert` head flag: errors name the field, the CLI shows the flag. */
const HEAD_OPTION_FIELDS: Readonly<Record<string, string>> = {
  'vit-heads': 'heads.vit', 'qformer-heads': 'heads.qformer', 'video-qformer-heads': 'heads.videoQformer',
  'audio-qformer-heads': 'heads.audioQformer', 'imagebind-heads': 'heads.imagebind',
};

export function defaultHeads(width: number, releaseHeadDim: number, option: string): number {
  if (width % releaseHeadDim === 0 && width / releaseHeadDim >= 4) return width / releaseHeadDim;
  if (width % 4 === 0) return 4;
  const field = HEAD_OPTION_FIELDS[option] ?? option;
  throw new VideoLlamaError('INVALID_ARGUMENT', `cannot choose a head count for width ${width}; pass ${field} (--${option} on the command line)`,
    { width, name: field });
}

function heads(given: number | undefined, width: number, releaseHeadDim: number, option: string): number {
  if (given === undefined) return defaultHeads(width, releaseHeadDim, option);
  if (!Number.isInteger(given) || given <= 0 || width % given !== 0) {
    throw invalidArgument(HEAD_OPTION_FIELDS[option] ?? option, `a positive divisor of the width ${width}`, given);
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
  /** Blocks used: 39 of the release files' 40 (or 39); see `chooseVitDepth` and docs/converting.md. */
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

function invalidLayout(home: CheckpointRole, ckptKey: string, problem: string): VideoLlamaError {
  return new VideoLlamaError('INVALID_MODEL', `checkpoint for ${home}: ${problem} (at '${ckptKey}')`, { key: ckptKey });
}

function readVit(ckpts: CheckpointSet, headsOption: number | undefined, depthOption: number | undefined): { vit: VitHparams; depth: VitDepthChoice } {
  const width = ckpts.dim('evaVit', 'cls_token', 3, 2);
  const patchSize = ckpts.dim('evaVit', 'patch_embed.proj.weight', 4, 3);
  const patches = ckpts.dim('evaVit', 'pos_embed', 3, 1) - 1;
  const grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches) throw invalidLayout('evaVit', 'pos_embed', `${patches} patch positions do not form a square grid`);
  const blocks = ckpts.countBlocks('evaVit', 'blocks.');
  const depth = chooseVitDepth({ blocks, width, option: depthOption, file: ckpts.fileName('evaVit') });
  const vit = {
    imageSize: grid * patchSize,
    patchSize,
    width,
    depth: depth.depth,
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.vit, 'vit-heads'),
    mlpWidth: ckpts.dim('evaVit', 'blocks.0.mlp.fc1.weight', 2, 0),
    patches,
  };
  return { vit, depth };
}

/** The option that sets each Q-Former's heads. */
const QFORMER_HEADS_OPTION: Readonly<Record<QformerKind, string>> = { image: 'qformer-heads', video: 'video-qformer-heads', audio: 'audio-qformer-heads' };

function readQformer(ckpts: CheckpointSet, kind: QformerKind, headsOption: number | undefined): QformerHparams {
  const { home, bert, queryTokens } = QFORMER_LAYOUTS[kind];
  const width = ckpts.dim(home, queryTokens, 3, 2);
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
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.qformer, QFORMER_HEADS_OPTION[kind]),
    layers,
    ffnWidth: ckpts.dim(home, `${bert}encoder.layer.0.intermediate_query.dense.weight`, 2, 0),
    queries: ckpts.dim(home, queryTokens, 3, 1),
    crossAttentionFreq: freq,
    encoderWidth: ckpts.dim(home, `${bert}encoder.layer.0.crossattention.self.key.weight`, 2, 1),
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
  const width = ckpts.dim('imagebind', `${pre}cls_token`, 3, 2);
  const patchSize = ckpts.dim('imagebind', `${pre}rgbt_stem.proj.weight`, 4, 3);
  const patches = ckpts.dim('imagebind', `${pre}pos_embedding_helper.pos_embed`, 3, 1) - 1;
  const patchStride = audioPatchStride(patchSize, patches);
  if (patchStride === undefined) {
    throw invalidLayout('imagebind', `${pre}pos_embedding_helper.pos_embed`, `${patches} patch positions fit no stride of a ${patchSize}×${patchSize} kernel over a ${FIXED.melBins}×${FIXED.targetFrames} fbank`);
  }
  return {
    width,
    depth: ckpts.countBlocks('imagebind', 'modality_trunks.audio.blocks.'),
    heads: heads(headsOption, width, RELEASE_HEAD_DIM.imagebind, 'imagebind-heads'),
    mlpWidth: ckpts.dim('imagebind', 'modality_trunks.audio.blocks.0.mlp.fc1.weight', 2, 0),
    outWidth: ckpts.dim('imagebind', 'modality_heads.audio.2.weight', 2, 0),
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

/** Settings that shapes cannot give (see {@link HeadOptions} and `ConvertOptions.vitDepth`). */
export interface HparamOptions {
  heads: HeadOptions;
  vitDepth?: number;
}

/** {@link readHparams}' result: the sizes, and how the EVA ViT depth was chosen (with the vision branch). */
export interface ReadHparams {
  hparams: ProjectorHparams;
  vitDepth?: VitDepthChoice;
}

/** Reads every hyper-parameter from tensor shapes (and the logit-scale buffer). */
export async function readHparams(ckpts: CheckpointSet, branches: BranchSelection, options: HparamOptions): Promise<ReadHparams> {
  const { heads: headOptions } = options;
  let vision: ProjectorHparams['vision'];
  let audio: ProjectorHparams['audio'];
  let vitDepth: VitDepthChoice | undefined;
  if (branches.vision) {
    const { vit, depth } = readVit(ckpts, headOptions.vit, options.vitDepth);
    vitDepth = depth;
    vision = {
      vit,
      qformer: readQformer(ckpts, 'image', headOptions.qformer),
      videoQformer: readQformer(ckpts, 'video', headOptions.videoQformer ?? headOptions.qformer),
      maxFrames: ckpts.dim('videoBranch', 'video_frame_position_embedding.weight', 2, 0),
    };
  }
  if (branches.audio) {
    audio = {
      imagebind: await readImagebind(ckpts, headOptions.imagebind),
      audioQformer: readQformer(ckpts, 'audio', headOptions.audioQformer ?? headOptions.qformer),
      maxClips: ckpts.dim('audioBranch', 'audio_position_embedding.weight', 2, 0),
    };
  }
  return { hparams: { llmWidth: llmWidth(ckpts, branches), vision, audio }, vitDepth };
}

/** LLaMA's model sizes by embedding width (LLaMA-2-chat and Vicuna alike). */
const LLM_SIZES: Readonly<Record<number, string>> = { 4096: '7B', 5120: '13B' };

/**
 * `E`, the rows of the branches' projections into the LLM; both branches must agree (a 13B vision
 * branch with a 7B audio branch fails here, naming both files).
 */
function llmWidth(ckpts: CheckpointSet, branches: BranchSelection): number {
  const vision = branches.vision ? ckpts.dim('videoBranch', 'llama_proj.weight', 2, 0) : undefined;
  const audio = branches.audio ? ckpts.dim('audioBranch', 'audio_llama_proj.weight', 2, 0) : undefined;
  if (vision !== undefined && audio !== undefined && vision !== audio) {
    const size = (width: number): string => (LLM_SIZES[width] ? ` (a ${LLM_SIZES[width]} LLM)` : '');
    const [videoFile, audioFile] = [ckpts.fileName('videoBranch'), ckpts.fileName('audioBranch')];
    throw new VideoLlamaError(
      'TENSOR_SHAPE',
      `these branch files are for different LLM sizes: ${vision} vs ${audio} — ${videoFile} projects to ${vision}${size(vision)}, ` +
        `${audioFile} to ${audio}${size(audio)}; use the vision and audio branch files of one release`,
      { key: 'audio_llama_proj.weight', file: audioFile, expected: vision, found: audio },
    );
  }
  const width = vision ?? audio;
  if (width === undefined) throw invalidArgument('branches', 'at least one of vision and audio', branches);
  return width;
}
