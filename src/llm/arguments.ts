/**
 * Argument checks shared by the language-model objects.
 * @module
 */
import { invalidArgument } from '../errors.js';

/** Token ids as an Int32Array (INVALID_ARGUMENT for anything but integer ids). @internal */
export function tokenArray(tokens: readonly number[] | Int32Array, name: string): Int32Array {
  if (!(tokens instanceof Int32Array) && !(Array.isArray(tokens) && tokens.every((t) => Number.isInteger(t)))) {
    throw invalidArgument(name, 'an array of integer token ids', tokens);
  }
  return tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
}

/** An integer option of at least `min`, or undefined. @internal */
export function checkInteger(value: unknown, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < min)) {
    throw invalidArgument(name, `an integer >= ${min}`, value);
  }
}
