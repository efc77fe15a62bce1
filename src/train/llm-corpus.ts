/**
 * The language the demo LLM is pretrained on: the world's captions and conversations
 * (src/world/language.ts) rendered in the LLaMA-2 chat template the library's chat uses, with a
 * scene's caption standing where its media will stand; and the SentencePiece-style pieces of a text
 * (whole words, `▁`-prefixed at a word start), from which the LLM's vocabulary is made.
 * @module
 */
import { LLAMA2_SYSTEM_PROMPT, LLAMA2_TEMPLATE, MEDIA_PLACEHOLDER, userMessage, type TemplateTurn } from '../chat/templates.js';
import type { MediaEmbedding, MediaKind } from '../media-embedding.js';
import { caption, conversation, makeScene, SPLITS, type Scene, type SceneKind } from '../world/index.js';

/**
 * A GGUF `tokenizer.chat_template` (Jinja) of LLaMA-2 chat: `[INST] <<SYS>>…<</SYS>>` as the
 * library's `'llama2'` template renders it, so that chats on the model pick that template.
 */
export const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}" +
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' }}" +
  "{% if loop.first %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}{{ message['content'] + ' [/INST]' }}" +
  "{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

/** The media a scene's sample would send to the chat: a video with sound is an audio and a video upload. */
const SCENE_MEDIA: Readonly<Record<SceneKind, readonly MediaKind[]>> = {
  video: ['audio', 'video'],
  'silent-video': ['video'],
  image: ['image'],
  audio: ['audio'],
};

/** Frames the library samples from a video (VideoProcessor's default). */
const SAMPLED_FRAMES = 8;

/**
 * What the chat says after a silent video's placeholder ("The video contains 8 frames sampled at
 * 0.0, 0.3, … seconds. "), with the times spread evenly over the scene: the numbers vary as they
 * will at inference, whatever they are exactly.
 */
function framesDescription(scene: Scene): string {
  const seconds = Array.from({ length: SAMPLED_FRAMES }, (_, i) => ((i * scene.durationSeconds) / SAMPLED_FRAMES).toFixed(1));
  return `The video contains ${SAMPLED_FRAMES} frames sampled at ${seconds.join(', ')} seconds. `;
}

/**
 * A conversation as training text: the LLaMA-2 prompt of `turns` (every reply given), each reply
 * followed by `</s>`. The tokenizer adds the first `<s>`.
 */
export function chatDocument(system: string, turns: readonly Required<TemplateTurn>[]): string {
  return LLAMA2_TEMPLATE.prompt(system, turns);
}

/**
 * How a scene's sample is put to the chat in the training text: the system prompt a chat sends with
 * its media, and its first user message for a question, with the caption where the media go.
 */
export function sceneChat(scene: Scene): { system: string; withMedia: (question: string) => string } {
  const kinds = SCENE_MEDIA[scene.kind];
  const media = kinds.map((kind): MediaEmbedding => ({ kind, tokens: 1, dim: 1, data: new Float32Array(1), description: framesDescription(scene) }));
  const text = caption(scene);
  return {
    system: LLAMA2_TEMPLATE.defaultSystem(new Set(kinds)),
    withMedia: (question) => userMessage(question, media).split(MEDIA_PLACEHOLDER).join(text),
  };
}

/**
 * The two training documents of a scene, in the chat's wording for its media (system prompt and
 * upload text as `VideoLlama` chats send them) with the caption where the media's embeddings will
 * be: the caption asked for (stage 1's target) and the scene's question/answer conversation (stage 2's).
 */
export function sceneDocuments(scene: Scene): [string, string] {
  const { system, withMedia } = sceneChat(scene);
  const text = caption(scene);
  const turns = conversation(scene);
  const describe = turns[turns.length - 1]!.q;
  return [
    chatDocument(system, [{ user: withMedia(describe), assistant: text }]),
    chatDocument(system, turns.map((turn, i) => ({ user: i === 0 ? withMedia(turn.q) : turn.q, assistant: turn.a }))),
  ];
}

/** The documents of scenes 0 … samples − 1 of the world's `train` split for `seed`, two per scene. */
export function worldDocuments(seed: number, samples: number): string[] {
  return Array.from({ length: samples }, (_, i) => sceneDocuments(makeScene('train', seed, i))).flat();
}

/** Control tokens written as text in the documents; they are tokens of their own, not pieces. */
const CONTROL_TEXT = /<\/?s>/g;

/**
 * The pieces of `texts` as a SentencePiece vocabulary should know them whole: each run of letters
 * and digits, `▁`-prefixed when a space precedes it (and at the start, as the tokenizer adds one),
 * and runs of spaces; in order of first appearance. Punctuation and other single characters are
 * left to the vocabulary's single-character and byte pieces.
 */
export function corpusPieces(texts: Iterable<string>): string[] {
  const pieces = new Set<string>();
  for (const text of texts) {
    const spm = `▁${text.replace(CONTROL_TEXT, ' ')}`.replace(/ /g, '▁');
    for (const [, spaces, word] of spm.matchAll(/(▁*)([A-Za-z0-9]*)/g)) {
      if (spaces!.length > 1) pieces.add(spaces!.slice(word ? 1 : 0));
      if (word) pieces.add(spaces ? `▁${word}` : word);
    }
  }
  return [...pieces];
}

/**
 * Scenes per split read for {@link worldPieces}: each phrasing is a pick among at most three, and
 * the rarest (e.g. "It beeps three times.") has a chance of about 2 % per scene, so 1,000 scenes
 * per split leave no word of the templates unseen.
 */
const VOCABULARY_SCENES = 1000;

/**
 * Every piece the world's documents can contain: those of {@link VOCABULARY_SCENES} scenes of every
 * split, and the chat's own wording (system prompts, upload text, template).
 */
export function worldPieces(): string[] {
  const texts: string[] = [chatDocument(LLAMA2_SYSTEM_PROMPT, [{ user: 'Hello', assistant: 'Yes' }])];
  for (const split of SPLITS) for (let i = 0; i < VOCABULARY_SCENES; i++) texts.push(...sceneDocuments(makeScene(split, 1, i)));
  return corpusPieces(texts);
}
