/**
 * Greedy answers of a pretrained demo LLM to the questions of held-out world scenes, with the scene's
 * caption where its media would be (the training text's wording), scored by answerMatches; prints
 * right/asked and the percentage per attribute:
 *   vite-node bench/demo-llm-answers.ts <llm.gguf> [scenes (20)] [scenes shown (2)]
 * (a pretraining run's `out/model.gguf` is rewritten at every checkpoint: it can be measured while
 * the run goes on).
 */
import { LLAMA2_TEMPLATE } from '../src/chat/templates.js';
import { LlmModel } from '../src/llm/model.js';
import { sceneChat } from '../src/train/llm-corpus.js';
import { answerMatches, conversation, makeScene } from '../src/world/index.js';

const [file, count = '20', shown = '2'] = process.argv.slice(2);
if (!file) throw new Error('usage: vite-node bench/demo-llm-answers.ts <llm.gguf> [scenes] [scenes shown]');
const model = await LlmModel.load(file);
const context = await model.createContext({ contextSize: 512, sequences: 1 });
const sequence = context.getSequence();
const score: Record<string, { right: number; asked: number }> = {};
for (let i = 0; i < Number(count); i++) {
  const scene = makeScene('heldout', 1, i);
  const { system, withMedia } = sceneChat(scene);
  for (const turn of conversation(scene)) {
    const prompt = model.tokenize(LLAMA2_TEMPLATE.prompt(system, [{ user: withMedia(turn.q) }]), { addBos: true, special: true });
    const reply: number[] = [];
    for (let t = 0; t < 40; t++) {
      const logits = await sequence.nextTokenLogits([[...prompt, ...reply]]);
      const next = logits.indexOf(Math.max(...logits));
      if (next === 2) break; // </s>
      reply.push(next);
    }
    const text = model.detokenize(reply).trim();
    const right = answerMatches(turn.attribute, turn.value, text);
    const s = (score[turn.attribute] ??= { right: 0, asked: 0 });
    s.asked += 1;
    s.right += right ? 1 : 0;
    if (i < Number(shown)) console.log(`${right ? 'right' : 'wrong'}  ${withMedia(turn.q)}  →  ${text}`);
  }
}
for (const [attribute, s] of Object.entries(score)) {
  console.log(`${attribute.padEnd(12)} ${`${s.right}/${s.asked}`.padStart(9)}  ${((100 * s.right) / s.asked).toFixed(1).padStart(5)} %`);
}
await context.dispose();
await model.dispose();
