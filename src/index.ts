/**
 * video-llama: Video-LLaMA for Node — chat about video, audio and images with a LLaMA-family
 * model run by llama.cpp.
 * @module
 */
export { VideoLlama, type PromptPart, type VideoLlamaOptions } from './video-llama.js';
export {
  Chat,
  type ChatMessage,
  type ChatOptions,
  type ChatTurn,
  type GenerateOptions,
  type StopReason,
  type TurnStats,
} from './chat/session.js';
export {
  defaultTemplateName,
  LLAMA2_SYSTEM_PROMPT,
  LLAMA2_TEMPLATE,
  MEDIA_PLACEHOLDER,
  TEMPLATES,
  VICUNA_TEMPLATE,
  VISUAL_SYSTEM_PROMPT,
  type ChatTemplate,
  type TemplateName,
  type TemplateTurn,
} from './chat/templates.js';
export type { MediaEmbedding, MediaKind } from './media-embedding.js';
export { VideoLlamaError, type VideoLlamaErrorCode } from './errors.js';
