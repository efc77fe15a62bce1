/**
 * `POST /v1/chat/completions`: OpenAI's chat completion, whole or streamed as server-sent
 * chunks ending with `[DONE]`.
 * @module
 */
import { randomUUID } from 'node:crypto';

import type { FastifyInstance, FastifyReply } from 'fastify';

import { badRequest, loggedApiError, unprocessableMedia } from './api-error.js';
import type { ServerContext } from './context.js';
import type { JsonSchema } from '../chat/json-schema.js';
import { checkJsonSchema, isLibraryError, type EncodedMedia, type Engine, type EngineMessage, type ReplyResult, type Sampling } from './engine.js';
import { parseConversation, type PendingUserMessage, type RequestMessage } from './messages.js';
import { openEventStream } from './sse.js';

/** The request body (what the schema lets through). */
interface ChatCompletionBody {
  model?: string;
  messages: RequestMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  response_format?: { type: 'text' | 'json_object' | 'json_schema'; json_schema?: { name?: string; schema?: JsonSchema } };
  n?: number | null;
  user?: string;
}

const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({ ...schema, type: [schema.type as string, 'null'] });

/** The JSON schema of the body: OpenAI's fields this server implements; any other field is a 400. */
const BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['messages'],
  properties: {
    model: { type: 'string' },
    messages: {
      type: 'array', minItems: 1, maxItems: 1024,
      items: {
        type: 'object', additionalProperties: false, required: ['role', 'content'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant'] },
          content: { type: ['string', 'array'], maxItems: 256 },
          name: { type: 'string' },
        },
      },
    },
    stream: nullable({ type: 'boolean' }),
    stream_options: nullable({ type: 'object', additionalProperties: false, properties: { include_usage: { type: 'boolean' } } }),
    max_tokens: nullable({ type: 'integer', minimum: 0, maximum: 1_000_000 }),
    max_completion_tokens: nullable({ type: 'integer', minimum: 0, maximum: 1_000_000 }),
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
    seed: nullable({ type: 'integer', minimum: 0, maximum: 4294967294 }),
    stop: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1 } },
        { type: 'null' },
      ],
    },
    frequency_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
    presence_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
    response_format: {
      type: 'object', required: ['type'],
      properties: {
        type: { enum: ['text', 'json_object', 'json_schema'] },
        json_schema: { type: 'object', required: ['schema'], properties: { name: { type: 'string' }, schema: { type: 'object' }, strict: nullable({ type: 'boolean' }) } },
      },
    },
    n: nullable({ type: 'integer', minimum: 1, maximum: 1 }),
    user: { type: 'string' },
  },
} as const;

/** `json_object` asks for any JSON object. */
const ANY_OBJECT: JsonSchema = { type: 'object', additionalProperties: true };

/** The schema `response_format` asks the reply to follow, checked (400 naming the field for one no grammar can follow). */
async function responseSchema(format: ChatCompletionBody['response_format']): Promise<JsonSchema | undefined> {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return ANY_OBJECT;
  const schema = format.json_schema?.schema;
  if (!schema) throw badRequest('response_format.json_schema', "'json_schema' needs json_schema.schema");
  try {
    await checkJsonSchema(schema, 'response_format.json_schema.schema');
  } catch (error) {
    if (isLibraryError(error, 'INVALID_ARGUMENT')) throw badRequest('response_format.json_schema.schema', error.message);
    throw error;
  }
  return schema;
}

async function sampling(body: ChatCompletionBody): Promise<Sampling> {
  const stop = body.stop ?? [];
  return {
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    seed: body.seed ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    stop: typeof stop === 'string' ? [stop] : stop,
    jsonSchema: await responseSchema(body.response_format),
  };
}

/** Encodes a message's media (from the cache when seen before). */
async function encodeMessage(context: ServerContext, engine: Engine, message: PendingUserMessage, signal: AbortSignal): Promise<EngineMessage> {
  const media: EncodedMedia[] = [];
  for (const reference of message.media) media.push(await context.media.encode(engine, reference, signal));
  return { text: message.text, media };
}

/** The library's errors during a reply, as responses. */
function replyError(error: unknown): unknown {
  if (isLibraryError(error, 'CONTEXT_OVERFLOW')) {
    return unprocessableMedia('messages', 'the conversation and its media do not fit in the model\'s context', 'context_length_exceeded');
  }
  return error;
}

/** What a whole reply and a streamed one share: an id, a time, the model. */
function completionHeader(context: ServerContext): { id: string; created: number; model: string } {
  return { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: context.modelId };
}

function usage(result: ReplyResult): Record<string, number> {
  return { prompt_tokens: result.promptPositions, completion_tokens: result.completionTokens, total_tokens: result.promptPositions + result.completionTokens };
}

/** Streams the reply as chat.completion.chunk records. */
async function streamReply(context: ServerContext, reply: FastifyReply, run: (onText: (text: string) => void) => Promise<ReplyResult>, includeUsage: boolean): Promise<void> {
  const header = { ...completionHeader(context), object: 'chat.completion.chunk' };
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null): Record<string, unknown> =>
    ({ ...header, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] });
  const events = openEventStream(reply);
  events.send(chunk({ role: 'assistant', content: '' }));
  try {
    const result = await run((text) => events.send(chunk({ content: text })));
    events.send(chunk({}, result.finishReason));
    if (includeUsage) events.send({ ...header, choices: [], usage: usage(result) });
    events.done();
  } catch (error) {
    // The status line is gone: an error record, as OpenAI sends one mid-stream.
    events.send(loggedApiError(reply.log, replyError(error)).body());
    events.end();
  }
}

/** Mounts the route. */
export function chatCompletionsRoute(app: FastifyInstance, context: ServerContext): void {
  app.post<{ Body: ChatCompletionBody }>('/v1/chat/completions', { schema: { body: BODY_SCHEMA }, bodyLimit: context.limits.bodyBytes }, async (request, reply) => {
    const body = request.body;
    const conversation = parseConversation(body.messages);
    const settings = await sampling(body);
    const engine = context.readyEngine();
    const signal = context.requestSignal(reply);
    return context.chats.run(signal, async () => {
      const history: { user: EngineMessage; assistant: string }[] = [];
      const encode = (user: PendingUserMessage): Promise<EngineMessage> => context.abortReason(signal, () => encodeMessage(context, engine, user, signal));
      for (const turn of conversation.history) history.push({ user: await encode(turn.user), assistant: turn.assistant });
      const message = await encode(conversation.message);
      const run = async (onText: (text: string) => void): Promise<ReplyResult> => {
        const result = await context.abortReason(signal, () => engine.reply({ system: conversation.system, history, message, sampling: settings, signal }, onText))
          .catch((error: unknown) => { throw replyError(error); });
        context.metrics.countGeneration(result.completionTokens, result.generationMs);
        return result;
      };
      if (body.stream) {
        await streamReply(context, reply, run, body.stream_options?.include_usage === true);
        return reply;
      }
      let content = '';
      const result = await run((text) => { content += text; });
      return {
        ...completionHeader(context),
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: result.finishReason, logprobs: null }],
        usage: usage(result),
      };
    });
  });
}
