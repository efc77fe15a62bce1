/**
 * Conversation templates of the original Video-LLaMA (`video_llama/conversation/
 * conversation_video.py`: `Conversation.get_prompt`, `default_conversation`,
 * `conv_llava_llama_2`, and the wording of `Chat.upload_video` / `upload_img` / `ask`), so that
 * the prompt text, and so the tokens, match the original exactly.
 * @module
 */
import type { MediaEmbedding, MediaKind } from '../media-embedding.js';

/** Where a media embedding goes in the prompt text; the original splits the prompt at it. */
export const MEDIA_PLACEHOLDER = '<ImageHere>';

/** One exchange of a conversation as text: the assistant's part is absent for the turn being answered. */
export interface TemplateTurn {
  /** The user's message, media wording (with placeholders) included. */
  user: string;
  /** The model's reply; undefined for the turn being answered. */
  assistant?: string;
}

/**
 * How a conversation becomes prompt text. Implement this for a custom format.
 *
 * @example
 * ```ts
 * const plain: ChatTemplate = {
 *   name: 'plain',
 *   stopStrings: ['\nUser:'],
 *   defaultSystem: () => '',
 *   prompt: (system, turns) =>
 *     system + turns.map((t) => `\nUser: ${t.user}\nBot:${t.assistant === undefined ? '' : ` ${t.assistant}`}`).join(''),
 * };
 * const chat = llama.createChat({ template: plain });
 * ```
 */
export interface ChatTemplate {
  /** A name for messages and logs. */
  readonly name: string;
  /** Generation stops when the reply contains one of these (the reply ends before it). */
  readonly stopStrings: readonly string[];
  /**
   * The system prompt used when the chat was given none, given the kinds of media in the
   * first message (the original's demos choose it by what was uploaded).
   */
  defaultSystem(media: ReadonlySet<MediaKind>): string;
  /**
   * The prompt for `turns`: every turn but the last has its reply; the text ends where the
   * model's next reply starts. Media stay as {@link MEDIA_PLACEHOLDER}.
   */
  prompt(system: string, turns: readonly TemplateTurn[]): string;
}

/** Names of the built-in templates. */
export type TemplateName = 'llama2' | 'vicuna';

/** The system prompt the original's demos set when an image or a video without audio is uploaded. */
export const VISUAL_SYSTEM_PROMPT =
  'You are able to understand the visual content that the user provides. Follow the instructions carefully and explain your answers in detail.';

/** `conv_llava_llama_2.system`. */
export const LLAMA2_SYSTEM_PROMPT =
  'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, ' +
  'and assist the user with a variety of tasks using natural language.';

/**
 * The demos' choice: audio (demo_audiovideo) clears the system prompt, an image or a video
 * (demo_video, upload_img) gets {@link VISUAL_SYSTEM_PROMPT}, a text chat keeps the
 * template's own.
 */
function demoSystem(textSystem: string): (media: ReadonlySet<MediaKind>) => string {
  return (media) => (media.has('audio') ? '' : media.size > 0 ? VISUAL_SYSTEM_PROMPT : textSystem);
}

/** Messages in the original's order: user, assistant, user, ..., with `undefined` (Python's `None`) for the pending reply. */
function messages(turns: readonly TemplateTurn[]): (string | undefined)[] {
  return turns.flatMap((turn) => [turn.user, turn.assistant]);
}

/**
 * `SeparatorStyle.SINGLE` with `default_conversation`: `system###Human: msg###Assistant: reply###…Assistant:`.
 * Stops at `###` (the original's stopping criterion on the token ids of `###`).
 */
export const VICUNA_TEMPLATE: ChatTemplate = Object.freeze({
  name: 'vicuna',
  stopStrings: ['###'],
  defaultSystem: demoSystem(''),
  prompt(system: string, turns: readonly TemplateTurn[]): string {
    const roles = ['Human', 'Assistant'];
    const sep = '###';
    let prompt = system + sep;
    messages(turns).forEach((message, i) => {
      // Python's `if message:` treats '' like None.
      prompt += message ? `${roles[i % 2]}: ${message}${sep}` : `${roles[i % 2]}:`;
    });
    return prompt;
  },
});

/**
 * `SeparatorStyle.LLAMA_2` with `conv_llava_llama_2`:
 * `[INST] <<SYS>>\nsystem\n<</SYS>>\n\nmsg [/INST] reply </s><s>[INST] msg [/INST]`
 * (the leading `<s>` is stripped: the tokenizer adds BOS). Stops at EOS, as the original.
 */
export const LLAMA2_TEMPLATE: ChatTemplate = Object.freeze({
  name: 'llama2',
  stopStrings: [],
  defaultSystem: demoSystem(LLAMA2_SYSTEM_PROMPT),
  prompt(system: string, turns: readonly TemplateTurn[]): string {
    const [sep, sep2] = ['<s>', '</s>'];
    let prompt = '';
    messages(turns).forEach((message, i) => {
      if (!message) return;
      const text = i === 0 ? `<<SYS>>\n${system}\n<</SYS>>\n\n${message}` : message;
      prompt += i % 2 === 0 ? `${sep}[INST] ${text} [/INST]` : ` ${text} ${sep2}`;
    });
    // ret.lstrip(self.sep): strips leading characters of the set {'<', 's', '>'}.
    return prompt.replace(/^[<s>]+/, '');
  },
});

/** The built-in templates by name: `TEMPLATES.llama2` is {@link LLAMA2_TEMPLATE}, `TEMPLATES.vicuna` {@link VICUNA_TEMPLATE}. */
export const TEMPLATES: Readonly<Record<TemplateName, ChatTemplate>> = Object.freeze({ llama2: LLAMA2_TEMPLATE, vicuna: VICUNA_TEMPLATE });

/**
 * The built-in template that suits a model, judged from its GGUF `tokenizer.chat_template`
 * (what {@link VideoLlama.defaultTemplate} holds):
 * a LLaMA-2 chat template (`[INST]` with `<<SYS>>`) means `'llama2'`; anything else `'vicuna'`
 * (Video-LLaMA's default, for Vicuna-based releases).
 */
export function defaultTemplateName(ggufChatTemplate: string): TemplateName {
  return ggufChatTemplate.includes('[INST]') && ggufChatTemplate.includes('<<SYS>>') ? 'llama2' : 'vicuna';
}

/**
 * The wording `Chat.upload_video` (audio and video), `upload_video_without_audio` and
 * `upload_img` add for an upload, with one placeholder per embedding. The audio+video text is
 * the original's verbatim, including the runs of spaces its Python line continuations put
 * inside the string literal. Audio without video has no wording in the original; it gets
 * the sound half of the audio-visual one.
 */
const UPLOAD_WORDING = {
  audioVideo:
    `Close your eyes, open your ears and you imagine only based on the sound that: ${MEDIA_PLACEHOLDER}. ` +
    `                Close your ears, open your eyes and you see that <Video>${MEDIA_PLACEHOLDER}</Video>.  ` +
    '                Now answer my question based on what you have just seen and heard.',
  audio: `Close your eyes, open your ears and you imagine only based on the sound that: ${MEDIA_PLACEHOLDER}.`,
  video: (description: string) => `<Video>${MEDIA_PLACEHOLDER}</Video> ${description}`,
  image: `<Image>${MEDIA_PLACEHOLDER}</Image> `,
} as const;

/**
 * The media in the order their placeholders appear in {@link userMessage}: an audio and a
 * video are paired (audio first, as `upload_video` appends them); everything else keeps its
 * order.
 */
export function orderMedia(media: readonly MediaEmbedding[]): MediaEmbedding[] {
  return uploads(media).flat();
}

/** Groups media into uploads: each audio goes with the first unpaired video, if any. */
function uploads(media: readonly MediaEmbedding[]): MediaEmbedding[][] {
  const videos = media.filter((m) => m.kind === 'video');
  const audios = media.filter((m) => m.kind === 'audio');
  const pairs = new Map<MediaEmbedding, MediaEmbedding>();
  audios.slice(0, videos.length).forEach((audio, i) => pairs.set(videos[i]!, audio));
  const paired = new Set(pairs.values());
  const groups: MediaEmbedding[][] = [];
  for (const m of media) {
    if (paired.has(m)) continue;
    const audio = pairs.get(m);
    groups.push(audio ? [audio, m] : [m]);
  }
  return groups;
}

function uploadText(group: readonly MediaEmbedding[]): string {
  if (group.length === 2) return UPLOAD_WORDING.audioVideo;
  const [media] = group as [MediaEmbedding];
  if (media.kind === 'video') return UPLOAD_WORDING.video(media.description ?? '');
  return media.kind === 'audio' ? UPLOAD_WORDING.audio : UPLOAD_WORDING.image;
}

/**
 * The user's message as the original builds it: the upload wording, then `Chat.ask` joins the
 * question with a space (`' '.join([upload_message, text])`).
 */
export function userMessage(text: string, media: readonly MediaEmbedding[]): string {
  if (media.length === 0) return text;
  return [...uploads(media).map(uploadText), text].join(' ');
}
