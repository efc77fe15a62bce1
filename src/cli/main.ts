#!/usr/bin/env node
/**
 * The `video-llama` command line.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';

import { VideoLlamaError } from '../errors.js';
import { helpText, inCliWords, parseCommandArgs, type Command } from './command.js';
import { chatCommand } from './commands/chat.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { describeCommand } from './commands/describe.js';
import { planCommand } from './commands/plan.js';
import { serveCommand } from './commands/serve.js';
import { trainCommand } from './commands/train.js';
import { worldCommand } from './commands/world.js';

const commands: Command[] = [
  describeCommand,
  planCommand,
  chatCommand,
  convertCommand,
  demoCommand,
  serveCommand,
  worldCommand,
  trainCommand,
  evalCommand,
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 8);
  return [
    'Usage: video-llama <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `video-llama <command> --help` for the options of a command, `video-llama --version` for the version.',
  ].join('\n');
}

/** The package's version, from its package.json (two folders up from dist/cli and src/cli). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * A reader that stops early (`video-llama describe … | head`) closes our stdout: stop quietly,
 * as Unix tools do, instead of dying on an unhandled EPIPE with a stack trace.
 */
function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(process.exitCode ?? 0);
    });
  }
}

/** An error as one line on stderr: a library error by its code, in CLI words; anything else with its stack. */
function report(error: unknown, command: Command | undefined): void {
  const known = error instanceof VideoLlamaError ? (command ? inCliWords(error, command) : error) : undefined;
  console.error(`video-llama: ${known ? `${known.code}: ${known.message}` : String((error as Error)?.stack ?? error)}`);
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    console.log(version());
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`video-llama: unknown command '${name}'\n\n${usage()}`);
    return 1;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args.help) {
      console.log(helpText(command));
      return 0;
    }
    await command.run(args);
    return 0;
  } catch (error) {
    report(error, command);
    return 1;
  }
}

exitQuietlyOnClosedOutput();
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    report(error, undefined);
    process.exitCode = 1;
  },
);
