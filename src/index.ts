/**
 * video-llama: Video-LLaMA for Node — chat about video, audio and images with a LLaMA-family
 * model run by llama.cpp.
 * @module
 */
export { VideoLlama, type VideoLlamaOptions } from './video-llama.js';
export { LlmModel, type LlmModelOptions } from './llm/model.js';
export { LlmContext, type ContextModel, type ContextOptions } from './llm/context.js';
export { ContextSequence, type PromptPart, type SequenceContext, type SequenceModel } from './llm/sequence.js';
export {
  Chat,
  type ChatMessage,
  type ChatOptions,
  type ChatTurn,
  type ContextOverflowPolicy,
  type GenerateOptions,
  type JsonGenerateOptions,
  type PlannedMessage,
  type StopReason,
  type TurnStats,
} from './chat/session.js';
export { type JsonSchema, type JsonSchemaType, type JsonSchemaValue, type JsonTypeValue } from './chat/json-schema.js';
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
export {
  Projector,
  type AudioEncodeOptions,
  type EncodeOptions,
  type EncodeProgress,
  type ImageEncodeOptions,
  type MediaEncodeOptions,
  type ProjectorInfo,
  type ProjectorLoadOptions,
  type TensorInput,
  type VideoEncodeOptions,
} from './projector.js';
export type { AudioInput, AudioInputOptions, ImageInput, MediaDecodeOptions, VideoInput, VideoInputOptions } from './encoders/inputs.js';
export type { MediaInput, RgbFrames } from './media/index.js';
export type { MediaFetchOptions } from './media/input.js';
export {
  EncodeCache,
  encodeCacheKey,
  type EncodeCacheOptions,
  type EncodeCacheStats,
  type EncodeKeyParts,
} from './cache/encode-cache.js';
export { fileIdentity, hashMediaInput } from './cache/hashing.js';
export type { ContextFit, EncodePlan, PlanChat, PlanLimits, PlannedMedia, PlanOptions } from './plan/plan.js';
export { deserializeMediaEmbeddings, serializeMediaEmbeddings } from './cache/embedding-format.js';
export { probe, type MediaProbe, type ProbeOptions, type SourceKind, type StreamInfo } from './media/probe.js';
export {
  convertCheckpoints,
  type ConvertOptions,
  type ConvertProgress,
  type ConvertReport,
  type ProjectorWeightType,
} from './convert/convert.js';
export type { HeadOptions, ImagebindHparams, ProjectorHparams, QformerHparams, VitHparams } from './convert/hparams.js';
export type { VitDepthChoice } from './convert/vit-depth.js';
export { VideoLlamaError, type VideoLlamaErrorCode } from './errors.js';
export type { GpuOption } from './backends.js';
export { IGNORE_LABEL, type ExampleInput, type LazyValues, type TrainingBranch, type TrainingExample, type UnfreezePart } from './train/example.js';
export {
  stepExamples,
  Trainer,
  type NamedTensor,
  type TrainConfig,
  type TrainerOptions,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
} from './train/trainer.js';
export { learningRate, STAGE_CONFIGS, type OptimizerSchedule, type StageConfig, type TrainingStage } from './train/schedule.js';
export type { GradientCheckReport, TensorGradientCheck } from './train/gradient-check.js';
export {
  BadEntries,
  ManifestError,
  readManifest,
  type BadEntry,
  type BadEntryPolicy,
  type ManifestEntry,
  type ManifestProblem,
  type ManifestStage,
  type ManifestTurn,
  type ReadManifestOptions,
} from './train/manifest.js';
export {
  FeatureCache,
  FROZEN_STAGE,
  MEDIA_STAGE,
  type Branch,
  type FeatureCacheStats,
  type FeatureInput,
  type FeatureRequest,
  type FeatureStage,
  type FrozenFeatures,
  type LazyFeatures,
} from './train/features.js';
export {
  MEDIA_TOKEN,
  modelTokenizer,
  stage1Layout,
  stage2Layout,
  type ConversationMedia,
  type ConversationTurn,
  type PromptLayout,
  type PromptTokenizer,
  type Stage1LayoutOptions,
  type Stage2Format,
  type Stage2LayoutOptions,
  type VicunaMasking,
} from './train/template.js';
export { buildExamples, type BuildExamplesOptions } from './train/examples.js';
export {
  DEFAULT_TOPOLOGY,
  pretrainLlm,
  type LlmTopology,
  type PretrainCorpus,
  type PretrainLlmControl,
  type PretrainLlmOptions,
  type PretrainLlmProgress,
  type PretrainLlmResult,
} from './train/llm-pretrain.js';
export {
  EVAL_ATTRIBUTES,
  evaluateEntries,
  evaluateWorlds,
  formatEvalTable,
  scoreQuestions,
  type AttributeScore,
  type EvalQuestion,
  type EvalReport,
  type EvalSample,
  type EvaluateEntriesOptions,
  type EvaluateWorldsOptions,
} from './eval/evaluate.js';
export { chatAsker, type AskerModel, type AskSample, type ChatAsker, type ChatAskerOptions, type MediaChoice, type SampleQuestion } from './eval/chat-asker.js';
export { checkQuality, QUALITY_ATTRIBUTES, QUALITY_CLIPS, type CheckQualityOptions } from './eval/quality.js';
export {
  demoModelDir,
  hasModelPackage,
  MODEL_PACKAGE_FORMAT,
  MODEL_PACKAGE_MANIFEST,
  readModelPackage,
  writeModelPackage,
  type ModelPackage,
  type ModelPackageManifest,
  type ModelProvenance,
  type PackagedFile,
  type WriteModelPackageOptions,
} from './eval/model-package.js';
export type { QaAttribute } from './world/language.js';
export { ATTRIBUTES, type Attribute } from './world/scene.js';
