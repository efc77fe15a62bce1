/**
 * Resolving the release checkpoints the way `VideoLLAMA.from_config` loads them
 * (video_llama/models/video_llama.py): EVA ViT-g into `visual_encoder.*`, the BLIP-2 checkpoint,
 * ImageBind into `audio_encoder.*`, then the vision-branch (`ckpt`) and audio-branch (`ckpt_2`)
 * checkpoints with `strict=False` — a key present in a later file overrides the earlier value,
 * exactly as `load_state_dict` does.
 * @internal
 * @module
 */
import path from 'node:path';

import { VideoLlamaError } from '../errors.js';
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

  /** Axis `axis` of a required tensor that must be `rank`-d; TENSOR_SHAPE otherwise. */
  dim(home: CheckpointRole, key: string, rank: number, axis: number): number {
    const { tensor, file } = this.require(home, key);
    if (tensor.shape.length !== rank) {
      throw new VideoLlamaError('TENSOR_SHAPE', `tensor '${key}' in ${path.basename(file)} has shape [${tensor.shape.join(', ')}]; expected a ${rank}-d tensor`, {
        key, file, found: tensor.shape,
      });
    }
    return tensor.shape[axis]!;
  }

  /** The name of the file given for `role` (the role itself when none is). */
  fileName(role: CheckpointRole): string {
    return path.basename(this.files[role]?.file ?? role);
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

/** Which Q-Former: BLIP-2's image Q-Former, or Video-LLaMA's video or audio Q-Former. */
export type QformerKind = 'image' | 'video' | 'audio';

/** Where a Q-Former's tensors are in the checkpoints. */
export interface QformerLayout {
  /** The file that holds it. */
  readonly home: CheckpointRole;
  /** Prefix of its BERT tensors: `Qformer.bert.` / `video_Qformer.bert.` / `audio_Qformer.bert.`. */
  readonly bert: string;
  /** Key of its learned query tokens `[1, queries, width]`. */
  readonly queryTokens: string;
}

/** The three Q-Formers' checkpoint layouts (blip2.py `init_Qformer`, video_llama.py `__init__`). */
export const QFORMER_LAYOUTS: Readonly<Record<QformerKind, QformerLayout>> = {
  image: { home: 'blip2', bert: 'Qformer.bert.', queryTokens: 'query_tokens' },
  video: { home: 'videoBranch', bert: 'video_Qformer.bert.', queryTokens: 'video_query_tokens' },
  audio: { home: 'audioBranch', bert: 'audio_Qformer.bert.', queryTokens: 'audio_query_tokens' },
};
