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
    throw new VideoLlamaError('INVALID_ARGUMENT', `${(error as Error).message}\n\n${helpText(command)}`);
  }
}

/** A required string option, or a clear error naming it. */
export function requireString(args: ParsedArgs, name: string): string {
  const value = args.values[name];
  if (typeof value !== 'string' || value === '') {
    throw new VideoLlamaError('INVALID_ARGUMENT', `missing required option --${name}`);
  }
  return value;
}
