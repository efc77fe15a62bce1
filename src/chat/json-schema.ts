/**
 * Answers that follow a JSON schema: the schema becomes a GBNF grammar for llama.cpp's grammar
 * sampler, and the finished text is parsed and validated against the schema.
 *
 * The schema-to-grammar converter and the validator are node-llama-cpp's (a dependency pinned
 * to one exact version): a tested converter beats a new one. llama.cpp's own converter is C++ in
 * its `common` library, which the prebuilt libllama does not contain. node-llama-cpp keeps the
 * two functions out of its export map, so they are imported by file path inside the installed
 * package; test/unit/json-schema.test.ts fails if an upgrade moves them.
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { VideoLlamaError } from '../errors.js';

/** The JSON types a schema's `type` names. */
export type JsonSchemaType = 'string' | 'number' | 'integer' | 'boolean' | 'null' | 'object' | 'array';

/**
 * The JSON schemas an answer can be constrained to: the subset node-llama-cpp's grammar
 * converter supports (`type` string/number/integer/boolean/null, `enum`, `const`, `oneOf`,
 * objects with `properties` (each listed property is produced, in order), arrays with `items`/`prefixItems`,
 * `minItems`/`maxItems`, string `minLength`/`maxLength`/`format`, `$defs`/`$ref`). Declared here
 * rather than re-exported so that the published types do not depend on node-llama-cpp's.
 */
export interface JsonSchema {
  /** The value's JSON type (or one of several). */
  readonly type?: JsonSchemaType | readonly JsonSchemaType[];
  /** The values allowed. */
  readonly enum?: readonly unknown[];
  /** The one value allowed. */
  readonly const?: unknown;
  /** Schemas of which the value follows one. */
  readonly oneOf?: readonly JsonSchema[];
  /** An object's properties, each produced, in this order. */
  readonly properties?: { readonly [key: string]: JsonSchema };
  /** Schema of an array's items. */
  readonly items?: JsonSchema;
  /** Schemas of an array's first items, in order. */
  readonly prefixItems?: readonly JsonSchema[];
  /** Schemas that `$ref: '#/$defs/<name>'` names. */
  readonly $defs?: { readonly [key: string]: JsonSchema };
  /** Other keywords (`minItems`, `maxLength`, `$ref`, …). */
  readonly [keyword: string]: unknown;
}

/**
 * The TypeScript type of a value that validates against schema `S` (declare the schema `as const`;
 * `$ref` and `prefixItems` give `unknown`).
 */
export type JsonSchemaValue<S> = S extends unknown ? (
  'const' extends keyof S ? S['const' & keyof S] :
  'enum' extends keyof S ? (S['enum' & keyof S] & readonly unknown[])[number] :
  'oneOf' extends keyof S ? JsonSchemaValue<(S['oneOf' & keyof S] & readonly unknown[])[number]> :
  'type' extends keyof S ? JsonTypeValue<S, S['type' & keyof S]> :
  unknown
) : never;

/** The value of schema `S` whose `type` is `T`. */
export type JsonTypeValue<S, T> =
  T extends 'object' ? ('properties' extends keyof S ? { -readonly [K in keyof S['properties' & keyof S]]: JsonSchemaValue<S['properties' & keyof S][K]> } : Record<string, unknown>) :
  T extends 'array' ? ('items' extends keyof S ? JsonSchemaValue<S['items' & keyof S]>[] : unknown[]) :
  T extends 'string' ? string :
  T extends 'number' | 'integer' ? number :
  T extends 'boolean' ? boolean :
  T extends 'null' ? null :
  unknown;

/** A grammar for the sampler and the way to read the text it allowed. @internal */
export interface ResponseGrammar {
  /** GBNF text, rule `root`. */
  gbnf: string;
  /** Text that ends the answer once the grammar is complete (the converter's trailing newlines). */
  stop: string;
  /** Parses and validates the finished text; throws INVALID_OUTPUT when it does not. */
  parse(text: string): unknown;
}

interface Converter {
  toGbnf(schema: JsonSchema): string;
  validate(value: unknown, schema: JsonSchema): boolean;
}

let converter: Promise<Converter> | undefined;

/** node-llama-cpp's converter and validator, loaded once by file path (see the module comment). */
function loadConverter(): Promise<Converter> {
  converter ??= (async () => {
    const dist = path.dirname(createRequire(import.meta.url).resolve('node-llama-cpp'));
    const load = (file: string): Promise<Record<string, unknown>> =>
      import(pathToFileURL(path.join(dist, 'utils', 'gbnfJson', file)).href) as Promise<Record<string, unknown>>;
    const [grammar, validator] = await Promise.all([load('getGbnfGrammarForGbnfJsonSchema.js'), load('utils/validateObjectAgainstGbnfSchema.js')]);
    return {
      toGbnf: grammar.getGbnfGrammarForGbnfJsonSchema as Converter['toGbnf'],
      validate: validator.validateObjectAgainstGbnfSchema as Converter['validate'],
    };
  })();
  return converter;
}

/** The text the converter's grammar ends with: four newlines (then any number more). */
const GRAMMAR_END = '\n\n\n\n';

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array']);

function badSchema(name: string, problem: string): VideoLlamaError {
  return new VideoLlamaError('INVALID_ARGUMENT', `${name} is not a schema an answer can follow: ${problem}`, { name });
}

/**
 * Checks what the converter would silently turn into something else (an unknown `type` becomes
 * `null`, an empty `enum` the empty string, a dangling `$ref` any JSON), naming the path.
 */
function checkSchema(schema: unknown, name: string, defs: Record<string, unknown>): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw badSchema(name, 'expected an object');
  const node = schema as Record<string, unknown>;
  const nestedDefs = { ...defs, ...(node.$defs as Record<string, unknown> | undefined) };
  const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type];
  const unknown = types.find((t) => !TYPES.has(t as string));
  if (unknown !== undefined) throw badSchema(`${name}.type`, `unknown type ${JSON.stringify(unknown)}`);
  for (const key of ['enum', 'oneOf'] as const) {
    if (key in node && (!Array.isArray(node[key]) || (node[key] as unknown[]).length === 0)) throw badSchema(`${name}.${key}`, 'expected a non-empty array');
  }
  if (typeof node.$ref === 'string' && !(node.$ref.replace(/^#\/\$defs\//, '') in nestedDefs)) {
    throw badSchema(`${name}.$ref`, `${node.$ref} names no entry of $defs`);
  }
  if (!('type' in node) && !('enum' in node) && !('const' in node) && !('oneOf' in node) && !('$ref' in node)) {
    throw badSchema(name, 'expected one of type, enum, const, oneOf or $ref');
  }
  const children: [string, unknown][] = [
    ...Object.entries((node.properties as Record<string, unknown> | undefined) ?? {}).map(([k, v]) => [`properties.${k}`, v] as [string, unknown]),
    ...((node.oneOf as unknown[] | undefined) ?? []).map((v, i) => [`oneOf[${i}]`, v] as [string, unknown]),
    ...((node.prefixItems as unknown[] | undefined) ?? []).map((v, i) => [`prefixItems[${i}]`, v] as [string, unknown]),
    ...Object.entries((node.$defs as Record<string, unknown> | undefined) ?? {}).map(([k, v]) => [`$defs.${k}`, v] as [string, unknown]),
    ...(typeof node.items === 'object' ? [['items', node.items] as [string, unknown]] : []),
  ];
  for (const [key, child] of children) checkSchema(child, `${name}.${key}`, nestedDefs);
}

/**
 * The converter's number rules allow an exponent of up to 16 digits: a sampled `1e9999999`
 * parses as Infinity, and as an `integer` it fails the converter's own validation. Integers get
 * no exponent here and other numbers an exponent of at most two digits (always finite).
 */
function withBoundedNumbers(gbnf: string): string {
  return gbnf
    .replace(/^(integer-number-rule ::= "-"\? \("0" \| \[1-9\] \[0-9\]\{0,15\}\)) \(\[eE\].*\)\?$/m, '$1')
    .replace(/^(fractional-number-rule ::= .*)\(\[eE\] \[-\+\]\? \("0" \| \[1-9\] \[0-9\]\{0,15\}\)\)\?$/m, '$1([eE] [-+]? [0-9]{1,2})?');
}

/**
 * The grammar of `schema`. Rejects with INVALID_ARGUMENT naming the part of the schema that no
 * grammar can follow (an unknown type, an empty enum, a dangling `$ref`).
 * @internal
 */
export async function jsonSchemaGrammar(schema: JsonSchema, name = 'options.jsonSchema'): Promise<ResponseGrammar> {
  checkSchema(schema, name, {});
  const { toGbnf, validate } = await loadConverter();
  let gbnf: string;
  try {
    gbnf = toGbnf(schema);
  } catch (error) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${name} cannot be turned into a grammar: ${(error as Error).message}`,
      { name }, { cause: error });
  }
  return {
    gbnf: withBoundedNumbers(gbnf),
    stop: GRAMMAR_END,
    parse(text: string): unknown {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new VideoLlamaError('INVALID_OUTPUT', `the answer is not complete JSON (generation stopped early?): ${(error as Error).message}`,
          { text }, { cause: error });
      }
      try {
        validate(value, schema);
      } catch (error) {
        throw new VideoLlamaError('INVALID_OUTPUT', `the answer does not validate against ${name}: ${(error as Error).message}`,
          { text }, { cause: error });
      }
      return value;
    },
  };
}
