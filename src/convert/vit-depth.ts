/**
 * How many EVA ViT-g blocks the projector runs. The original always builds
 * `create_eva_vit_g(depth=39)` (video_llama/models/eva_vit.py) and loads the file with
 * `strict=False`: the LAVIS release's 40-block file loses its last block (BLIP-2 uses the
 * second-to-last layer), and a 39-block copy is used whole. Only at the release width does the
 * converter know that; other sizes (test models) use every block but the last, by analogy.
 * @internal
 * @module
 */
import { invalidArgument, VideoLlamaError } from '../errors.js';

/** EVA ViT-g as Video-LLaMA builds it: width 1408, 39 blocks. */
export const RELEASE_VIT = { width: 1408, depth: 39 } as const;

/** The depth used, and why (printed by `video-llama convert`). */
export interface VitDepthChoice {
  /** Blocks the projector runs. */
  depth: number;
  /** `blocks.{i}` in the file. */
  blocksInFile: number;
  /** `release`: the original's 39; `all-but-last`: another width; `option`: `--vit-depth`. */
  rule: 'release' | 'all-but-last' | 'option';
  /** One sentence for the user. */
  reason: string;
}

/** What the rule looks at. */
export interface VitDepthInput {
  /** `blocks.{i}` in the EVA file. */
  blocks: number;
  /** EVA width (`cls_token`'s last dim). */
  width: number;
  /** `--vit-depth`, when given. */
  option?: number;
  /** The EVA file's name, for messages. */
  file: string;
}

/**
 * The EVA ViT depth: `option` when given (1 to the blocks in the file); 39 at the release width
 * when the file has at least 39 blocks (INVALID_MODEL naming the count when it has fewer); the
 * blocks minus one at other widths.
 */
export function chooseVitDepth({ blocks, width, option, file }: VitDepthInput): VitDepthChoice {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 1 || option > blocks) {
      throw invalidArgument('vitDepth', `an integer from 1 to ${blocks} (the blocks in ${file})`, option);
    }
    return { depth: option, blocksInFile: blocks, rule: 'option', reason: `set by --vit-depth (${file} has ${blocks} blocks)` };
  }
  if (width === RELEASE_VIT.width) {
    if (blocks < RELEASE_VIT.depth) {
      throw new VideoLlamaError(
        'INVALID_MODEL',
        `${file} has ${blocks} EVA ViT-g blocks; the original builds ${RELEASE_VIT.depth} (release files have 40, some copies 39): ` +
          `download it again, or pass vitDepth: ${blocks} (--vit-depth ${blocks} on the command line) to use the blocks it has`,
        { file, blocks, expected: RELEASE_VIT.depth },
      );
    }
    const unused = blocks - RELEASE_VIT.depth;
    const rest = unused === 0 ? 'the file has exactly those' : `the file's last ${unused === 1 ? 'block is' : `${unused} blocks are`} unused, as with strict=False`;
    return { depth: RELEASE_VIT.depth, blocksInFile: blocks, rule: 'release', reason: `the original builds EVA ViT-g with depth ${RELEASE_VIT.depth}; ${rest}` };
  }
  if (blocks < 2) {
    throw new VideoLlamaError('INVALID_MODEL', `${file} has ${blocks} EVA ViT blocks; all but the last are used, so at least 2 are needed`, { file, blocks });
  }
  return {
    depth: blocks - 1,
    blocksInFile: blocks,
    rule: 'all-but-last',
    reason: `width ${width} is not the release's ${RELEASE_VIT.width}: all blocks but the last, as BLIP-2 uses EVA's second-to-last layer`,
  };
}
