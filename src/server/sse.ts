/**
 * Server-sent events on a Fastify reply: `data: <json>` records, as OpenAI streams chat chunks.
 * @module
 */
import { PassThrough } from 'node:stream';

import type { FastifyReply } from 'fastify';

/** An open event stream. */
export interface EventStream {
  /** Sends one record (`event:` line when `event` is given). */
  send(data: unknown, event?: string): void;
  /** Sends `data: [DONE]` and ends the stream. */
  done(): void;
  /** Ends the stream. */
  end(): void;
}

/** Starts a `text/event-stream` response (status 200) on `reply`. */
export function openEventStream(reply: FastifyReply): EventStream {
  const stream = new PassThrough();
  void reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no') // proxies must not hold the stream back
    .send(stream);
  const write = (text: string): void => {
    if (!stream.writableEnded) stream.write(text);
  };
  return {
    send: (data, event) => write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`),
    done: () => {
      write('data: [DONE]\n\n');
      stream.end();
    },
    end: () => stream.end(),
  };
}
