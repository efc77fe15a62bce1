/**
 * `npm run bench:encoders` (and first half of `npm run bench`): the encoders at Video-LLaMA's real sizes on random weights, in every weight
 * type, against the original PyTorch model's figures for the same kind of machine. Prints the
 * machine, the command and a table; writes everything to .cache/bench/results.json. Runs on any
 * x86-64 CPU: it measures the peak of the instructions this one has and runs our kernels of the
 * chosen instruction set (`--isa`, default the best one here; `--isa avx2` on an AVX-512 machine
 * computes like an AVX2-only one, ggml included, and `--isa avxvnni` like an AVX2 CPU with AVX-VNNI:
 * VIDEO_LLAMA_CPU_ISA).
 *
 *   npm run bench:encoders [-- --reps 5 --peer-reps 1 --frames 8 --clips 8 --threads N --types f32,f16,bf16,q8_0 --growth 100 --isa avx2 --products-only]
 *
 * --products-only: the peaks and the single products only (no models, minutes instead of hours on a slow CPU).
 * Encoders: each configuration runs `--reps` times (ggml's `--peer-reps`), one video and one audio
 * encode per process, the configurations taking turns (ggml's, then ours, round after round), so
 * that a busy machine slows all of them alike; medians are reported.
 *
 * Models are generated once into .cache/ (about 10 GB for the four projector types).
 * Never part of `npm test`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { ProjectorWeightType } from '../src/convert/convert.js';
import { cachedRandomProjector, RELEASE_PROJECTOR } from '../src/dev/random-projector.js';
import type { EncodeTiming, WorkerOptions, WorkerReport } from './encode-worker.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(repoRoot, '.cache');
const outDir = path.join(cacheDir, 'bench');

type Isa = 'avx512' | 'avxvnni' | 'avx2';

/**
 * The original PyTorch model (fp32, 2 threads, full-size encoders) as measured by the issues that
 * asked for these benchmarks, one machine per instruction set, and how this machine relates to it:
 * PyTorch is assumed faster here by this machine's `relate.what` over that machine's (never slower).
 */
interface PytorchReference {
  machine: string;
  vitPerFrame: number;
  qformerPerFrame: number;
  audioPerClip: number;
  /** PyTorch f32 on the MLP-up product (2056 x 1408 x 6144), GFLOP/s. */
  mlpGflops: number;
  relate: { what: string; value: number; measured: (peak: Record<string, number>, matmul: Record<string, Record<string, number>>) => number | undefined };
}
const PYTORCH: Record<'avx512' | 'avx2', PytorchReference> = {
  avx512: {
    machine: '2-core AMD Zen 4', vitPerFrame: 4.5, qformerPerFrame: 0.47, audioPerClip: 0.7, mlpGflops: 85,
    relate: { what: "ggml f32's GFLOP/s on the MLP-up shape", value: 36, measured: (_, matmul) => matmul['ggml f32']?.['MLP up (fc1)'] },
  },
  avx2: {
    machine: '2-core AMD EPYC Zen 3, 2.45 GHz, AVX2 only', vitPerFrame: 5.94, qformerPerFrame: 0.5, audioPerClip: 8.0 / 8, mlpGflops: 116,
    relate: { what: 'the f32-fma-256 peak (GFLOP/s)', value: 157, measured: (peak) => (peak['f32-fma-256'] ?? 0) / 1e9 || undefined },
  },
};

/** Per second of wall time, and per second of the process's CPU time (all threads). */
interface WallAndCpu {
  wall: number;
  cpu: number;
}

interface BenchBinding {
  /** FLOP per wall second and per CPU second of the instruction's peak loop (0 where the CPU lacks it). */
  benchPeak(kind: string, threads: number, seconds: number): WallAndCpu;
  /** Best wall and best CPU seconds of one product. */
  benchMatmul(options: { m: number; k: number; n: number; type: string; isa?: Isa; threads: number; reps: number }): WallAndCpu;
}

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    'peer-reps': { type: 'string', default: '1' },
    frames: { type: 'string', default: '8' },
    clips: { type: 'string', default: '8' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    types: { type: 'string', default: 'f32,f16,bf16,q8_0' },
    growth: { type: 'string', default: '100' },
    isa: { type: 'string' },
    'products-only': { type: 'boolean', default: false },
  },
});
const reps = Number(args.reps), peerReps = Number(args['peer-reps']), frames = Number(args.frames), clips = Number(args.clips);
const threads = Number(args.threads), growth = Number(args.growth);
const types = args.types!.split(',') as ProjectorWeightType[];

// ---------------------------------------------------------------------------------------------
// Machine

const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
const cpuFlags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
const hasFlags = (...flags: string[]) => flags.every((f) => cpuFlags.has(f));
/** Our instruction sets this CPU has, best first. */
const cpuIsas: Isa[] = [
  ...(hasFlags('avx512f', 'avx512bw', 'avx512vl', 'avx512dq') && (cpuFlags.has('avx512_bf16') || cpuFlags.has('avx512_vnni')) ? ['avx512' as const] : []),
  ...(hasFlags('avx2', 'fma', 'f16c', 'avx_vnni') ? ['avxvnni' as const] : []),
  ...(hasFlags('avx2', 'fma', 'f16c') ? ['avx2' as const] : []),
];
if (args.isa !== undefined && !cpuIsas.includes(args.isa as Isa)) {
  throw new Error(`--isa ${args.isa}: this CPU runs ${cpuIsas.join(', ') || 'none of our kernels'}`);
}
/** The instruction set of our kernels in this run; undefined: ggml only. */
const isa = (args.isa as Isa | undefined) ?? cpuIsas[0];
// Read by the addon when it loads and by every projector load (ours here, the workers' through the environment).
if (isa) process.env.VIDEO_LLAMA_CPU_ISA = isa;
// the issue's AVX2 machine (Zen 3) is the reference for both AVX2 levels
const reference = PYTORCH[isa === 'avx512' ? 'avx512' : 'avx2'];

/** The bench addon (built by `npm run bench`: scripts/build-native.mjs --bench). */
function loadBenchAddon(): BenchBinding {
  const file = path.join(repoRoot, 'build', 'Release', 'video_llama_bench.node');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`node scripts/build-native.mjs --bench\` (npm run bench does)`);
  return createRequire(import.meta.url)(file) as BenchBinding;
}

function machine(): Record<string, string> {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1] ?? '?';
  const simd = ['avx2', 'fma', 'f16c', 'avx_vnni', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_bf16'].filter((f) => cpuFlags.has(f));
  return {
    cpu: `${os.cpus()[0]?.model ?? '?'} (family ${field('cpu family')}, model ${field('model')}), ${os.cpus().length} logical CPUs`,
    simd: simd.join(' '),
    'our kernels': isa ?? 'none (ggml only)',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    load: os.loadavg().map((l) => l.toFixed(2)).join(' '),
    command: `npm run bench:encoders -- --reps ${reps} --peer-reps ${peerReps} --frames ${frames} --clips ${clips} --threads ${threads} --types ${types.join(',')} --growth ${growth}${isa ? ` --isa ${isa}` : ''}${args['products-only'] ? ' --products-only' : ''}`,
    date: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// Workers

function runWorker(name: string, options: WorkerOptions, env: Record<string, string>): Promise<{ report: WorkerReport; stderr: string }> {
  const reportPath = path.join(outDir, `${name}.json`);
  fs.rmSync(reportPath, { force: true });
  const viteNode = path.join(repoRoot, 'node_modules', 'vite-node', 'vite-node.mjs');
  // --expose-gc: the worker collects garbage before reading RSS, so that JS garbage is not counted as growth
  const child = spawn(process.execPath, ['--expose-gc', viteNode, path.join(repoRoot, 'bench', 'encode-worker.ts'), JSON.stringify(options), reportPath],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${name} exited with ${code}:\n${stderr}`));
      else resolve({ report: JSON.parse(fs.readFileSync(reportPath, 'utf8')) as WorkerReport, stderr });
    });
  });
}

interface Config {
  name: string;
  type: ProjectorWeightType;
  kernels: 'ggml' | 'own';
  /** Processes (one video and one audio encode each). */
  rounds: number;
}

/** Weight types our kernels run (bf16 and f16: AVX-512 BF16 or AVX2; q8_0: AVX-512 VNNI, AVX-VNNI or AVX2). */
const OWN_TYPES: readonly ProjectorWeightType[] = ['f16', 'bf16', 'q8_0'];
const ownTypes = isa ? OWN_TYPES.filter((t) => types.includes(t)) : [];

/** ggml's kernels for every type (the baselines, `--peer-reps` rounds: they are slow), and ours. */
function configs(): Config[] {
  const list: Config[] = types.map((type) => ({ name: `${type}-ggml`, type, kernels: 'ggml', rounds: peerReps }));
  for (const type of ownTypes) list.push({ name: `${type}-own`, type, kernels: 'own', rounds: reps });
  return list;
}

/** The peaks this benchmark measures: the instructions of ggml's f32 and of each of our kernels. */
const PEAK_KINDS = ['f32-fma-256', 'int8-madd-256', 'int8-vnni-256', 'f32-fma-512', 'bf16-dot-512', 'int8-dot-512'] as const;

/** Our product of q8_0 weights, and the peak of its instruction, per instruction set. */
const INT8_KERNEL: Record<Isa, { op: string; peak: string }> = {
  avx512: { op: 'int8_gemm', peak: 'int8-dot-512' },
  avxvnni: { op: 'int8_gemm_avx_vnni', peak: 'int8-vnni-256' },
  avx2: { op: 'int8_gemm_avx2', peak: 'int8-madd-256' },
};

/** The peak a kernel is compared against: the instruction its inner loop is made of. */
function peakKind(kernel: { type: string; own: boolean }): string {
  if (!kernel.own) return cpuIsas[0] === 'avx512' && isa === 'avx512' ? 'f32-fma-512' : 'f32-fma-256';
  if (kernel.type === 'q8_0') return INT8_KERNEL[isa ?? 'avx2'].peak;
  return isa === 'avx512' ? 'bf16-dot-512' : 'f32-fma-256';
}

/** Our ops in the ViT's profile: the product and the attention, with the peaks they are measured against. */
function vitOps(type: string): { gemm: string; attention: string; attentionPeak: string } {
  const gemm = type === 'q8_0' ? INT8_KERNEL[isa ?? 'avx2'].op : isa === 'avx512' ? 'bf16_gemm' : 'half_gemm_avx2';
  return isa === 'avx512'
    ? { gemm, attention: 'bf16_attention', attentionPeak: 'bf16-dot-512' }
    : { gemm, attention: 'half_attention_avx2', attentionPeak: 'f32-fma-256' };
}


// ---------------------------------------------------------------------------------------------
// Arithmetic

const { vit } = RELEASE_PROJECTOR.vision!;
const vitTokens = vit.patches + 1;

/** FLOP of the ViT's linear layers and of its attention for `t` frames. */
function vitFlop(t: number): { linear: number; attention: number } {
  const d = vit.width, n = vitTokens * t;
  const perToken = 2 * (3 * d * d + d * d + 2 * d * vit.mlpWidth);
  return { linear: vit.depth * perToken * n, attention: vit.depth * 4 * t * vitTokens * vitTokens * d };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const best = (xs: number[]) => Math.min(...xs);
const fmt = (x: number, digits = 2) => x.toFixed(digits);
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/** Per-row cosine similarity of two [rows, width] arrays: min and mean. */
function cosine(a: Float32Array, b: Float32Array, width: number): { min: number; mean: number } {
  const rows = a.length / width;
  let min = 1, sum = 0;
  for (let r = 0; r < rows; r++) {
    let dot = 0, na = 0, nb = 0;
    for (let i = r * width; i < (r + 1) * width; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    const c = dot / Math.sqrt(na * nb);
    min = Math.min(min, c);
    sum += c;
  }
  return { min, mean: sum / rows };
}

/** The last `[profile] <stage>` block of a worker's stderr: seconds per operation. */
function profileOf(stderr: string, stage: string): Record<string, number> {
  const blocks = stderr.split(`[profile] ${stage}: `).slice(1);
  const last = blocks.at(-1) ?? '';
  const ops: Record<string, number> = {};
  for (const line of last.split('\n').slice(1)) {
    const m = /^\[profile\]\s{3}(\S+)\s+([\d.]+) s$/.exec(line);
    if (!m) break;
    ops[m[1]!] = Number(m[2]);
  }
  return ops;
}

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const info = machine();
  console.log('# video-llama benchmark\n');
  for (const [k, v] of Object.entries(info)) console.log(`- ${k}: ${v}`);

  const bench = loadBenchAddon();
  console.log('\n## Peak arithmetic rate (register-only loops of the instructions, best of 3 x 0.3 s; absent: not on this CPU)\n');
  const peak: Record<string, number> = {};
  const peakPerCpu: Record<string, number> = {};
  const peakRows: (string | number)[][] = [];
  // best of three: other processes can only make a run slower
  const peakOf = (kind: string, n: number) => {
    const runs = [0, 1, 2].map(() => bench.benchPeak(kind, n, 0.3));
    return { wall: Math.max(...runs.map((r) => r.wall)), cpu: Math.max(...runs.map((r) => r.cpu)) };
  };
  for (const kind of PEAK_KINDS) {
    const one = peakOf(kind, 1);
    if (!one.wall) continue;
    const all = peakOf(kind, threads);
    peak[kind] = all.wall;
    peakPerCpu[kind] = Math.max(one.cpu, all.cpu);
    peakRows.push([kind, fmt(one.wall / 1e9, 0), fmt(all.wall / 1e9, 0), fmt(peakPerCpu[kind]! / 1e9, 0)]);
  }
  console.log(table(['instruction', 'GFLOP/s, 1 thread', `GFLOP/s, ${threads} threads`, 'GFLOP per CPU-second (one core\'s peak)'], peakRows));

  console.log(`\n## One product at the ViT's shapes (${frames} frames = ${vitTokens * frames} tokens, ${threads} threads, median of ${reps} rounds)\n`);
  console.log('Each round runs every kernel once, in turn, each right after 0.1 s of the peak loop of its instruction;');
  console.log('GFLOP/s per second of wall time; the % is per second of CPU time (the product\'s against that peak loop\'s), so');
  console.log('that the time other jobs hold the cores counts for neither.\n');
  const shapes = [
    { name: 'q / k / v / proj', k: vit.width, n: vit.width },
    { name: 'MLP up (fc1)', k: vit.width, n: vit.mlpWidth },
    { name: 'MLP down (fc2)', k: vit.mlpWidth, n: vit.width },
  ];
  // ggml f32 always: it relates this machine to the issue's (see machineFactor)
  const ggmlTypes = [...new Set(['f32', ...types, 'q4_0'])];
  const kernels = ggmlTypes.map((type) => ({ label: `ggml ${type}`, type, own: false }));
  for (const type of ownTypes) kernels.push({ label: `ours ${type} (${isa})`, type, own: true });
  const matmul: Record<string, Record<string, number>> = {};
  const samples = new Map<string, { gflops: number[]; ofPeak: number[]; failed?: string }>();
  const m = vitTokens * frames;
  for (let round = 0; round < reps; round++) {
    for (const shape of shapes) {
      for (const kernel of kernels) {
        const key = `${kernel.label}|${shape.name}`;
        const sample = samples.get(key) ?? { gflops: [], ofPeak: [] };
        samples.set(key, sample);
        if (sample.failed) continue;
        try {
          const peakNow = bench.benchPeak(peakKind(kernel), threads, 0.1);
          const seconds = bench.benchMatmul({ m, k: shape.k, n: shape.n, type: kernel.type, isa: kernel.own ? isa : undefined, threads, reps: 1 });
          const flop = 2 * m * shape.k * shape.n;
          sample.gflops.push(flop / seconds.wall / 1e9);
          if (peakNow.cpu) sample.ofPeak.push((100 * flop) / seconds.cpu / peakNow.cpu);
        } catch (e) {
          // a case no kernel of this CPU runs is a cell of the table, not the end of the benchmark
          sample.failed = (e as Error).message;
        }
      }
    }
  }
  const matmulRows = kernels.map((kernel) => {
    matmul[kernel.label] = {};
    const cells = shapes.map((shape) => {
      const sample = samples.get(`${kernel.label}|${shape.name}`)!;
      if (sample.failed) return `not run (${sample.failed})`;
      matmul[kernel.label]![shape.name] = median(sample.gflops);
      return `${fmt(median(sample.gflops), 0)}${sample.ofPeak.length ? ` (${fmt(median(sample.ofPeak), 0)} %)` : ''}`;
    });
    return [kernel.label, ...cells, peakKind(kernel)];
  });
  console.log(table(['kernel', ...shapes.map((s) => `${s.name} GFLOP/s (% of peak)`), 'peak of'], matmulRows));
  console.log(`\n(The reference machine, ${reference.machine}, ran PyTorch f32 at ${reference.mlpGflops} GFLOP/s on the MLP-up shape.)`);

  if (args['products-only']) {
    fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ machine: info, peak, peakPerCpu, matmul }, null, 2));
    return;
  }

  console.log('\nGenerating / finding the random-weight models (first run only: minutes)...');
  const files = new Map<ProjectorWeightType, string>();
  for (const type of types) files.set(type, await cachedRandomProjector(cacheDir, RELEASE_PROJECTOR, type));

  console.log(`\n## Encoders (${frames}-frame video, ${clips}-clip audio, ${threads} threads)\n`);
  const reports = new Map<string, WorkerReport>();
  const list = configs();
  for (let round = 0; round < Math.max(...list.map((c) => c.rounds)); round++) {
    for (const config of list.filter((c) => round < c.rounds)) {
      process.stdout.write(`running ${config.name} (round ${round + 1} of ${config.rounds})...`);
      const options: WorkerOptions = {
        projector: files.get(config.type)!, threads, frames, clips, videoReps: 1, audioReps: 1,
        growthCalls: round === 0 && config.name === `${ownTypes[0]}-own` ? growth : 0, kernels: config.kernels, outPrefix: path.join(outDir, config.name),
      };
      const { report } = await runWorker(config.name, options, {});
      console.log(` video ${fmt(report.video[0]!.seconds)} s (CPU ${fmt(report.video[0]!.cpuSeconds)} s), audio ${fmt(report.audio[0]!.seconds, 3)} s (CPU ${fmt(report.audio[0]!.cpuSeconds, 3)} s)`);
      const earlier = reports.get(config.name);
      // timings of every round; load, memory and growth of the first
      reports.set(config.name, earlier ? { ...earlier, video: [...earlier.video, ...report.video], audio: [...earlier.audio, ...report.audio] } : report);
    }
  }
  // Where the ViT's time goes with our kernels (node-by-node timing, so a little slower than the runs above).
  const vitProfiles: Record<string, Record<string, number>> = {};
  for (const type of ownTypes) {
    process.stdout.write(`profiling ${type}-own...`);
    const { stderr } = await runWorker(`${type}-own-profile`, {
      projector: files.get(type)!, threads, frames, clips, videoReps: 1, audioReps: 0, growthCalls: 0, kernels: 'own', outPrefix: path.join(outDir, `${type}-own-profile`),
    }, { VIDEO_LLAMA_PROFILE: '1' });
    vitProfiles[type] = profileOf(stderr, 'vit');
    console.log(' done');
  }

  const llmWidth = RELEASE_PROJECTOR.llmWidth;
  // If this machine is faster than the reference one (by reference.relate), assume PyTorch would be
  // faster here by the same factor (a conservative reading of the bar).
  const related = reference.relate.measured(peak, matmul);
  const machineFactor = related ? Math.max(1, related / reference.relate.value) : 1;
  const f32Reference = reports.get('f32-ggml');
  const pytorchVideo = frames * (reference.vitPerFrame + reference.qformerPerFrame), pytorchAudio = clips * reference.audioPerClip;
  const rows: (string | number)[][] = [];
  for (const [name, r] of reports) {
    const v = r.video.map((x) => x.seconds), a = r.audio.map((x) => x.seconds);
    const stage = (timings: EncodeTiming[], s: string) => fmt(median(timings.map((x) => x.stages[s] ?? 0)));
    const simV = f32Reference ? cosine(readF32(path.join(outDir, `${name}-video.f32`)), readF32(path.join(outDir, 'f32-ggml-video.f32')), llmWidth) : undefined;
    const simA = f32Reference ? cosine(readF32(path.join(outDir, `${name}-audio.f32`)), readF32(path.join(outDir, 'f32-ggml-audio.f32')), llmWidth) : undefined;
    const vitSeconds = median(r.video.map((x) => x.stages.vit ?? 0));
    const { linear, attention } = vitFlop(frames);
    rows.push([
      name, `${fmt(median(v))} (best ${fmt(best(v))})`, stage(r.video, 'vit'), stage(r.video, 'qformer'), stage(r.video, 'video_qformer'),
      fmt((linear + attention) / vitSeconds / 1e9, 0), `${fmt(pytorchVideo / median(v), 1)}x (${fmt(pytorchVideo / machineFactor / median(v), 1)}x)`,
      `${fmt(median(a), 3)} (best ${fmt(best(a), 3)})`, `${fmt(pytorchAudio / median(a), 1)}x (${fmt(pytorchAudio / machineFactor / median(a), 1)}x)`,
      simV ? `${fmt(simV.min, 5)} / ${fmt(simA!.min, 5)}` : '',
      gib(r.peakRss), fmt(r.loadSeconds, 1), `${fmt(median(r.video.map((x) => x.cpuSeconds)))} / ${fmt(median(r.audio.map((x) => x.cpuSeconds)), 3)}`,
    ]);
  }
  console.log(`\nPyTorch fp32 (issue figures, ${reference.machine}): video ${fmt(pytorchVideo, 1)} s (${frames} x (${reference.vitPerFrame} + ${reference.qformerPerFrame})), audio ${fmt(pytorchAudio, 1)} s (${clips} x ${fmt(reference.audioPerClip)}).`);
  console.log(`"vs PyTorch": that time / ours; in parentheses, with PyTorch assumed ${fmt(machineFactor, 2)}x faster here (this machine's ${reference.relate.what}: ${related ? fmt(related, 0) : '?'}, the reference's ${reference.relate.value}).\n`);
  console.log(table(['config', 'video s (median)', 'vit s', 'qformer s', 'video_qformer+proj s', 'ViT GFLOP/s', 'vs PyTorch', 'audio s (median)', 'vs PyTorch', 'min cos vs f32 (video / audio)', 'peak RSS', 'load s', 'CPU s, all threads (video / audio, median)'], rows));

  for (const [type, profile] of Object.entries(vitProfiles)) {
    const { linear, attention } = vitFlop(frames);
    const total = Object.values(profile).reduce((s, x) => s + x, 0);
    const ops = vitOps(type), gemmOp = ops.gemm;
    const gemmPeak = peakKind({ type, own: true });
    console.log(`\n## Inside the ViT with our kernels (${type}, ${frames} frames, node-by-node timing)\n`);
    console.log(table(['operation', 'seconds', 'share', 'GFLOP/s', '% of its peak'], Object.entries(profile).filter(([, s]) => s >= 0.001).map(([op, s]) => {
      const flop = op === gemmOp ? linear : op === ops.attention ? attention : 0;
      const of = op === gemmOp ? gemmPeak : ops.attentionPeak;
      return [op, fmt(s, 3), `${fmt((100 * s) / total, 1)} %`, flop ? fmt(flop / s / 1e9, 0) : '', flop && peak[of] ? `${fmt((100 * flop) / s / peak[of]!, 0)} % of ${of}` : ''];
    })));
    console.log(`\nViT linear layers: ${fmt(linear / 1e12, 2)} TFLOP in ${fmt(profile[gemmOp] ?? 0, 2)} s; attention: ${fmt(attention / 1e9, 0)} GFLOP in ${fmt(profile[ops.attention] ?? 0, 2)} s.`);
  }

  for (const type of ownTypes) {
    const own = reports.get(`${type}-own`);
    if (!own) continue;
    console.log(`\n## Memory (${type}, our kernels)\n`);
    const used = own.peakRss - own.rssBeforeLoad;
    console.log(table(['weights', 'compute buffers', 'RSS before load', 'peak RSS', '(peak - before load) / (weights + compute)', `RSS after 10 / ${own.rssGrowth.calls} encodes`], [[
      gib(own.weightBytes), mib(own.computeBytes), mib(own.rssBeforeLoad), gib(own.peakRss), fmt(used / (own.weightBytes + own.computeBytes), 3),
      own.rssGrowth.calls ? `${mib(own.rssGrowth.after10)} / ${mib(own.rssGrowth.afterAll)}` : '',
    ]]));
  }

  const results = { machine: info, peak, peakPerCpu, matmul, reports: Object.fromEntries(reports), vitProfiles };
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2));
  console.log(`\nRaw results: ${path.relative(repoRoot, path.join(outDir, 'results.json'))}`);
}

await main();
