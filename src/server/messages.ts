/**
 * OpenAI chat messages to the engine's conversation: system text, completed exchanges, and the
 * message to answer, with each media part as a reference to resolve. Shape errors name the
 * field (`messages[2].content[1].input_audio.data`).
 * @module
 */
import { badRequest } from './api-error.js';
import { MEDIA_PLACEHOLDER } from './engine.js';
import type { MediaReference } from './media.js';

/** A message as the request body carries it (the schema checked role and the content's outer type). */
export interface RequestMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string | readonly Record<string, unknown>[];
}

/** A user message before its media are encoded. */
export interface PendingUserMessage {
  text: string;
  media: MediaReference[];
}

/** The conversation a request asks to continue. */
export interface ParsedConversation {
  system?: string;
  history: { user: PendingUserMessage; assistant: string }[];
  message: PendingUserMessage;
}

function checkedText(text: unknown, param: string): string {
  if (typeof text !== 'string') throw badRequest(param, 'expected a string');
  if (text.includes(MEDIA_PLACEHOLDER)) throw badRequest(param, `the text may not contain ${MEDIA_PLACEHOLDER} (send media as content parts)`);
  return text;
}

function object(value: unknown, param: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(param, 'expected an object');
  return value as Record<string, unknown>;
}

/** The fields of an object part, refusing any other (OpenAI refuses unknown fields too). */
function fields(value: unknown, param: string, allowed: readonly string[]): Record<string, unknown> {
  const part = object(value, param);
  const unknown = Object.keys(part).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw badRequest(`${param}.${unknown}`, 'unknown field');
  return part;
}

/** `{ data }` (base64), `{ url }` or `{ file_id }`: exactly one. */
function mediaSource(part: Record<string, unknown>, param: string): MediaReference['source'] {
  const given = (['data', 'url', 'file_id'] as const).filter((key) => part[key] !== undefined);
  if (given.length !== 1) throw badRequest(param, 'expected exactly one of data, url, file_id');
  const key = given[0]!;
  const value = part[key];
  if (typeof value !== 'string' || value === '') throw badRequest(`${param}.${key}`, 'expected a non-empty string');
  if (key === 'data') return { type: 'base64', data: value };
  if (key === 'url') return { type: 'url', url: value };
  return { type: 'upload', id: value };
}

/** One content part of a user message: its text or its media reference. */
function contentPart(value: unknown, param: string): { text: string } | { media: MediaReference } {
  const type = object(value, param).type;
  switch (type) {
    case 'text':
      return { text: checkedText(fields(value, param, ['type', 'text']).text, `${param}.text`) };
    case 'image_url': {
      const image = fields(fields(value, param, ['type', 'image_url']).image_url, `${param}.image_url`, ['url', 'detail']);
      if (typeof image.url !== 'string') throw badRequest(`${param}.image_url.url`, 'expected a string');
      return { media: { source: { type: 'url', url: image.url }, kind: 'image', param } };
    }
    case 'input_audio': {
      const audio = fields(fields(value, param, ['type', 'input_audio']).input_audio, `${param}.input_audio`, ['data', 'format', 'url', 'file_id']);
      if (audio.format !== undefined && typeof audio.format !== 'string') throw badRequest(`${param}.input_audio.format`, 'expected a string');
      // The format is not needed: ffmpeg reads the container.
      const { format: _format, ...source } = audio;
      return { media: { source: mediaSource(source, `${param}.input_audio`), kind: 'audio', param } };
    }
    case 'input_video': {
      const video = fields(fields(value, param, ['type', 'input_video']).input_video, `${param}.input_video`, ['data', 'url', 'file_id']);
      return { media: { source: mediaSource(video, `${param}.input_video`), kind: 'media', param } };
    }
    case 'file': {
      const file = fields(fields(value, param, ['type', 'file']).file, `${param}.file`, ['file_id', 'file_data', 'filename']);
      const source = file.file_data !== undefined ? { url: file.file_data } : { file_id: file.file_id };
      return { media: { source: mediaSource(source, `${param}.file`), kind: 'media', param } };
    }
    default:
      throw badRequest(`${param}.type`, "expected one of 'text', 'image_url', 'input_audio', 'input_video', 'file'");
  }
}

function userMessage(content: RequestMessage['content'], param: string): PendingUserMessage {
  if (typeof content === 'string') return { text: checkedText(content, param), media: [] };
  const texts: string[] = [];
  const media: MediaReference[] = [];
  content.forEach((value, i) => {
    const part = contentPart(value, `${param}[${i}]`);
    if ('text' in part) texts.push(part.text);
    else media.push(part.media);
  });
  return { text: texts.join('\n'), media };
}

/** The text of a system or assistant message (a string, or text parts only). */
function plainText(content: RequestMessage['content'], param: string): string {
  if (typeof content === 'string') return checkedText(content, param);
  return content.map((value, i) => {
    const part = fields(value, `${param}[${i}]`, ['type', 'text']);
    if (part.type !== 'text') throw badRequest(`${param}[${i}].type`, "expected 'text': system and assistant messages carry text only");
    return checkedText(part.text, `${param}[${i}].text`);
  }).join('\n');
}

/**
 * Splits a request's messages into the conversation: system (and developer) texts join into the
 * system prompt, consecutive user messages join into one, each assistant message closes an
 * exchange, and the last message must be the user's.
 */
export function parseConversation(messages: readonly RequestMessage[]): ParsedConversation {
  const system: string[] = [];
  const history: ParsedConversation['history'] = [];
  let pending: PendingUserMessage | undefined;
  messages.forEach((message, i) => {
    const param = `messages[${i}].content`;
    if (message.role === 'system' || message.role === 'developer') {
      system.push(plainText(message.content, param));
    } else if (message.role === 'user') {
      const user = userMessage(message.content, param);
      pending = pending ? { text: [pending.text, user.text].filter(Boolean).join('\n'), media: [...pending.media, ...user.media] } : user;
    } else {
      if (!pending) throw badRequest(`messages[${i}]`, 'an assistant message must follow a user message');
      history.push({ user: pending, assistant: plainText(message.content, param) });
      pending = undefined;
    }
  });
  if (!pending) throw badRequest('messages', 'the last message must be the user\'s');
  return { system: system.length > 0 ? system.join('\n') : undefined, history, message: pending };
}
