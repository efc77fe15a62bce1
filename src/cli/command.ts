/**
 * The shape of a CLI command: each lives in its own file under cli/commands and is listed in
 * cli/main.ts. Options are declared for node:util's parseArgs, so `--help` text and parsing
 * come from one place.
 * @internal
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { VideoLlamaError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** One line for --help; say the default here. */
  description: string;
  /** Placeholder shown in --help, e.g. `<file.gguf>`. */
  value?: string;
  /**
   * The library's name of what this option feeds (`options.topP` for `--top-p`): the library's
   * argument errors name it, and the CLI shows the flag instead (see {@link inCliWords}).
   */
  api?: string;
}

export interface Command {
  name: string;
  /** One line shown in the command list. */
  summary: string;
  /** Positional arguments as shown in usage, e.g. `<video>`. */
  positionals?: string;
  options: Record<string, OptionSpec>;
  run(args: ParsedArgs): Promise<void>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function helpText(command: Command): string {
  const lines = [`Usage: video-llama ${command.name}${command.positionals ? ` ${command.positionals}` : ''} [options]`, '', command.summary, '', 'Options:'];
  const entries = Object.entries({ ...command.options, help: { type: 'boolean', short: 'h', description: 'Show this help' } as OptionSpec });
  for (const [name, spec] of entries) {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.value ?? '<value>'}` : ''}`;
    lines.push(`  ${flag.padEnd(34)} ${spec.description}`);
  }
  return lines.join('\n');
}

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs & { help: boolean } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(command.options)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs['values'], positionals, help: values.help === true };
  } catch (error) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `${parseErrorText(error as NodeJS.ErrnoException)}\n\n${helpText(command)}`);
  }
}

/**
 * node:util's parse errors in our words: its unknown-option message ends in an unbalanced quote
 * and suggests `--` quoting, which is not what a mistyped option needs.
 */
function parseErrorText(error: NodeJS.ErrnoException): string {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option} (the options are listed below)`;
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    return /argument missing/.test(error.message) ? `option ${option} needs a value` : `option ${option} takes no value`;
  }
  return error.message;
}

/**
 * The one positional argument of a command (`<media-file>`): its absence or a second one is an
 * INVALID_ARGUMENT that says what was expected.
 */
export function onePositional(args: ParsedArgs, what: string): string {
  const [first, ...extra] = args.positionals;
  if (first === undefined || first === '') throw new VideoLlamaError('INVALID_ARGUMENT', `missing ${what}: give exactly one`, { name: what });
  if (extra.length > 0) {
    throw new VideoLlamaError('INVALID_ARGUMENT', `expected exactly one ${what}, got ${args.positionals.length}: ${args.positionals.join(' ')}`, { name: what });
  }
  return first;
}

/**
 * A library error in the words of the command line: an argument error that names an option by
 * its API name (`options.frames`) names the flag instead (`--frames`).
 */
export function inCliWords(error: VideoLlamaError, command: Command): VideoLlamaError {
  const name = error.details?.name;
  if (typeof name !== 'string') return error;
  const flag = Object.entries(command.options).find(([, spec]) => spec.api === name)?.[0];
  if (flag === undefined) return error;
  return new VideoLlamaError(error.code, error.message.replace(`for ${name} `, `for --${flag} `), { ...error.details, name: `--${flag}` }, { cause: error });
}

/** A required string option, or a clear error naming it. */
export function requireString(args: ParsedArgs, name: string): string {
  const value = args.values[name];
  if (typeof value !== 'string' || value === '') {
    throw new VideoLlamaError('INVALID_ARGUMENT', `missing required option --${name}`);
  }
  return value;
}
