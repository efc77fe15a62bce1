/**
 * A small world with known answers: seeded scenes of shapes, colours, motions, tones and beeps,
 * rendered to real media files, with stage-1 captions and stage-2 questions whose answers are
 * machine-checkable. See docs/world.md.
 * @module
 */
export {
  ATTRIBUTES, COLOURS, CONTAINERS, GENERATOR_PROFILE, makeScene, MOTIONS, OTHER_TOOL_PROFILE, PITCHES, Rng, SCENE_KINDS,
  sampleSeed, sceneFacts, SHAPES, SPLITS,
  type Attribute, type Beep, type Colour, type Container, type Motion, type Pitch, type Rgb, type Scene, type SceneAudio,
  type SceneFacts, type SceneKind, type SceneObject, type ScenePicture, type SceneProfile, type Shape, type Sound, type Split,
} from './scene.js';
export { frameSequence, objectAt, renderAudio, renderFrame, renderFrames } from './render.js';
export { CONTAINER_CODECS, sceneFileName, writeSceneFile, type WriteSceneOptions } from './encode-file.js';
export { answerMatches, caption, conversation, describeFacts, valuesNamed, type QaAttribute, type QaPair } from './language.js';
export { otherToolArgs, writeOtherToolFile } from './other-tool.js';
export {
  manifestRecord, writeDataset, type Stage, type Stage1Record, type Stage2Record, type WriteDatasetOptions, type WriteDatasetResult,
} from './dataset.js';
