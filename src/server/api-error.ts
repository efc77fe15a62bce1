/**
 * Errors in OpenAI's shape (`{ error: { message, type, param, code } }`) with their HTTP status,
 * and the one place that turns anything thrown while serving into one of them. Messages are
 * written here, never copied from the library or Node: those can name server paths and
 * temporary files.
 * @module
 */
import type { FastifyBaseLogger, FastifyError } from 'fastify';

/** The body of every error response, as OpenAI's API sends it. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error that becomes an HTTP response: status, OpenAI's `type`, the request field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly param: string | null = null,
    /** Seconds to put in `Retry-After` (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The OpenAI-shaped response body. */
  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: errorType(this.status), param: this.param, code: this.code } };
  }
}

function errorType(status: number): string {
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** 400 naming the request field at fault. */
export function badRequest(param: string, message: string): ApiError {
  return new ApiError(400, `${param}: ${message}`, 'invalid_request', param);
}

/** 422: media the server cannot decode or that exceeds a limit. */
export function unprocessableMedia(param: string, message: string, code = 'invalid_media'): ApiError {
  return new ApiError(422, `${param}: ${message}`, code, param);
}

/** Fastify's own errors that the client caused, by Fastify error code. */
const FASTIFY_CLIENT_ERRORS: Readonly<Record<string, [number, string, string]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'request_too_large', 'the request body is larger than this server accepts'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'unsupported Content-Type: send application/json (uploads: multipart/form-data)'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_request', 'the Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'the body is empty; expected a JSON object'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'the body is not valid JSON'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'unsupported_media_type', 'uploads must be multipart/form-data'],
  FST_REQ_FILE_TOO_LARGE: [413, 'file_too_large', 'the uploaded file is larger than this server accepts'],
  FST_PARTS_LIMIT: [413, 'request_too_large', 'the upload has too many parts'],
  FST_FILES_LIMIT: [413, 'request_too_large', 'send one file per upload'],
  FST_FIELDS_LIMIT: [413, 'request_too_large', 'the upload has too many fields'],
};

/** The field a JSON-schema validation error points at, in the request's own terms (`messages[0].content`). */
function validationParam(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return 'body';
  const path = first.instancePath.replace(/^\//, '').split('/').filter(Boolean)
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : `${i === 0 ? '' : '.'}${part}`)).join('');
  const params = first.params as Record<string, unknown>;
  const child = params.additionalProperty ?? params.missingProperty;
  if (typeof child === 'string') return path ? `${path}.${child}` : child;
  return path || 'body';
}

function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return 'invalid request';
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') return 'unknown field';
  if (first.keyword === 'required') return 'missing required field';
  if (first.keyword === 'enum') return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  return first.message ?? 'invalid value';
}

/**
 * Any error thrown while serving, as an {@link ApiError}: ours as they are, Fastify's
 * client errors with their status, schema violations as 400 naming the field; everything else
 * is a 500 whose message says nothing about the server (the caller logs the original).
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError?.validation) {
    const param = validationParam(fastifyError);
    return badRequest(param, validationMessage(fastifyError));
  }
  const known = typeof fastifyError?.code === 'string' ? FASTIFY_CLIENT_ERRORS[fastifyError.code] : undefined;
  if (known) return new ApiError(known[0], known[2], known[1]);
  if (fastifyError?.statusCode === 400 && error instanceof SyntaxError) return new ApiError(400, 'the body is not valid JSON', 'invalid_json');
  return new ApiError(500, 'internal server error', 'internal_error');
}

/** {@link toApiError}, logging the original when it is the server's fault (a 500). */
export function loggedApiError(log: FastifyBaseLogger, error: unknown): ApiError {
  const apiError = toApiError(error);
  if (apiError.status === 500) log.error({ err: error }, 'request failed');
  return apiError;
}
