/**
 * Upload once, ask many: `POST /v1/files` stores a file under its content address (OpenAI's
 * files API shape), `GET /v1/files[/:id[/content]]` lists and returns uploads, and
 * `POST /v1/files/:id/encode` encodes one ahead of the questions, streaming its progress and
 * the sampled frame times and audio clips (what the web page shows).
 * @module
 */
import { createReadStream } from 'node:fs';

import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';

import { ApiError, badRequest, loggedApiError } from './api-error.js';
import type { ServerContext } from './context.js';
import { openEventStream } from './sse.js';
import type { UploadedFile } from './uploads.js';

const ID_PARAMS = { type: 'object', properties: { id: { type: 'string', maxLength: 100 } }, required: ['id'] } as const;

function notFound(id: string): ApiError {
  return new ApiError(404, `no uploaded file has the id ${JSON.stringify(id)}`, 'file_not_found', 'id');
}

/** Mounts the routes. */
export async function filesRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  await app.register(multipart, { limits: { fileSize: context.limits.uploadBytes, files: 1, fields: 4, parts: 5 } });

  app.post('/v1/files', async (request) => {
    let purpose = 'user_data';
    let upload: UploadedFile | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.fieldname === 'purpose' && typeof part.value === 'string') purpose = part.value.slice(0, 64);
      } else if (part.fieldname === 'file' && !upload) {
        upload = await context.uploads.save(part.file, part.filename.slice(0, 255), purpose);
      } else {
        part.file.resume();
        throw badRequest(part.fieldname, 'unexpected file field; send the file as "file"');
      }
    }
    if (!upload) throw badRequest('file', 'missing required field');
    return upload;
  });

  app.get('/v1/files', async () => ({ object: 'list', data: await context.uploads.list() }));

  app.get<{ Params: { id: string } }>('/v1/files/:id', { schema: { params: ID_PARAMS } }, async (request) => {
    const upload = await context.uploads.get(request.params.id);
    if (!upload) throw notFound(request.params.id);
    return upload;
  });

  app.get<{ Params: { id: string } }>('/v1/files/:id/content', { schema: { params: ID_PARAMS } }, async (request, reply) => {
    const file = await context.uploads.filePath(request.params.id);
    if (!file) throw notFound(request.params.id);
    return reply.type('application/octet-stream').send(createReadStream(file));
  });

  app.post<{ Params: { id: string } }>('/v1/files/:id/encode', { schema: { params: ID_PARAMS } }, async (request, reply) => {
    const { id } = request.params;
    if (!(await context.uploads.get(id))) throw notFound(id);
    const engine = context.readyEngine();
    const signal = context.requestSignal(reply);
    return context.encodes.run(signal, async () => {
      const events = openEventStream(reply);
      try {
        const encoded = await context.abortReason(signal, () =>
          context.media.encode(engine, { source: { type: 'upload', id }, kind: 'media', param: 'id' }, signal, (fraction) => events.send({ fraction }, 'progress')));
        events.send({
          kinds: encoded.embeddings.map((e) => e.kind),
          positions: encoded.positions,
          frame_times: encoded.frameTimes ?? [],
          audio_clips: encoded.audioClips ?? [],
        }, 'done');
      } catch (error) {
        events.send(loggedApiError(request.log, error).body(), 'error');
      }
      events.end();
      return reply;
    });
  });
}
