import { describe, expect, it } from 'vitest';

import { jsonSchemaGrammar, type JsonSchema } from '../../src/chat/json-schema.js';

describe('jsonSchemaGrammar (node-llama-cpp\'s converter, loaded by file path)', () => {
  const schema = {
    type: 'object',
    properties: {
      colour: { enum: ['red', 'green', 'blue'] },
      count: { type: 'integer' },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
    },
  } as const satisfies JsonSchema;

  it('turns a schema into a GBNF grammar with a root rule naming its values', async () => {
    const grammar = await jsonSchemaGrammar(schema);
    expect(grammar.gbnf).toMatch(/^root ::= /m);
    expect(grammar.gbnf).toContain('\\"colour\\"');
    expect(grammar.gbnf).toContain('\\"green\\"');
    expect(grammar.stop).toBe('\n\n\n\n');
  });

  it('bounds the number rules: integers without an exponent, other numbers with at most two exponent digits', async () => {
    const { gbnf } = await jsonSchemaGrammar({ type: 'array', items: { oneOf: [{ type: 'integer' }, { type: 'number' }] } });
    expect(gbnf).toMatch(/^integer-number-rule ::= "-"\? \("0" \| \[1-9\] \[0-9\]\{0,15\}\)$/m);
    expect(gbnf).toMatch(/^fractional-number-rule ::= .*\(\[eE\] \[-\+\]\? \[0-9\]\{1,2\}\)\?$/m);
  });

  it('parses text that validates and rejects text that does not, with INVALID_OUTPUT', async () => {
    const grammar = await jsonSchemaGrammar(schema);
    expect(grammar.parse('{"colour": "red", "count": 2, "tags": ["a"]}')).toEqual({ colour: 'red', count: 2, tags: ['a'] });
    expect(() => grammar.parse('{"colour": "pink", "count": 2, "tags": []}')).toThrow(expect.objectContaining({ code: 'INVALID_OUTPUT' }));
    expect(() => grammar.parse('{"colour": "red", "count": 2')).toThrow(expect.objectContaining({ code: 'INVALID_OUTPUT', message: expect.stringMatching(/not complete JSON/) }));
  });

  it('names the option for a schema the converter cannot take', async () => {
    await expect(jsonSchemaGrammar(null as unknown as JsonSchema)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/options\.jsonSchema/) });
    const bad: [unknown, RegExp][] = [
      [{ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, /properties\.a\.\$ref.*names no entry/],
      [{ type: 'object', properties: { a: { type: 'strin' } } }, /properties\.a\.type.*unknown type "strin"/],
      [{ type: 'array', items: { enum: [] } }, /items\.enum.*non-empty/],
      [{ type: 'object', properties: { a: { description: 'x' } } }, /properties\.a is not.*one of type, enum/],
    ];
    for (const [schema, message] of bad) {
      await expect(jsonSchemaGrammar(schema as JsonSchema)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
    }
    const withDefs = { $defs: { colour: { enum: ['red'] } }, type: 'object', properties: { c: { $ref: '#/$defs/colour' } } };
    expect((await jsonSchemaGrammar(withDefs as unknown as JsonSchema)).parse('{"c": "red"}')).toEqual({ c: 'red' });
  });
});
