import { describe, expect, test } from 'vitest';

import { answerMatches, caption, conversation, describeFacts } from '../../src/world/language.js';
import { ATTRIBUTES, type Attribute, makeScene, type Scene, sceneFacts } from '../../src/world/scene.js';

/** Every value each attribute can take. */
const VALUES: Record<Attribute, string[]> = {
  colour: ['red', 'green', 'blue', 'yellow', 'white'],
  shape: ['circle', 'square', 'triangle'],
  count: ['1', '2', '3'],
  motion: ['left', 'right', 'up', 'down', 'still'],
  sound: ['silence', 'tone', 'beeps'],
  pitch: ['low', 'high'],
  beepCount: ['1', '2', '3'],
};

const scenes: Scene[] = [
  ...Array.from({ length: 800 }, (_, i) => makeScene('train', 4, i)),
  ...Array.from({ length: 200 }, (_, i) => makeScene('other-tool', 4, i)),
];

describe('captions and conversations', () => {
  test('are deterministic and vary their phrasing', () => {
    expect(scenes.slice(0, 50).map(caption)).toEqual(scenes.slice(0, 50).map((s) => caption(makeScene(s.split, s.seed, s.index))));
    expect(conversation(scenes[3]!)).toEqual(conversation(makeScene('train', 4, 3)));
    expect(new Set(scenes.map((s) => caption(s).split(' ').slice(-3).join(' '))).size).toBeGreaterThan(50);
    const questions = new Set(scenes.flatMap((s) => conversation(s).map((t) => t.q)));
    expect(questions).toContain('What colour is the shape?');
    expect(questions).toContain('Which way does it move?');
    expect(questions).toContain('How many beeps do you hear?');
    expect(questions).toContain('Describe the video.');
  });

  test('each caption names every fact of its scene, and no other value', () => {
    for (const scene of scenes) {
      const text = caption(scene);
      const facts = sceneFacts(scene);
      expect(answerMatches('description', describeFacts(facts), text), `${scene.id}: ${text}`).toBe(true);
    }
  });

  test('a conversation asks about each applicable attribute once, then for a description; every answer names its value only', () => {
    for (const scene of scenes) {
      const turns = conversation(scene);
      const facts = sceneFacts(scene);
      expect(turns.slice(0, -1).map((t) => t.attribute).sort()).toEqual(ATTRIBUTES.filter((a) => facts[a] !== undefined).sort());
      expect(turns.at(-1)!.attribute).toBe('description');
      for (const turn of turns) {
        expect(answerMatches(turn.attribute, turn.value, turn.a), `${scene.id}: ${turn.q} ${turn.a}`).toBe(true);
        if (turn.attribute === 'description') continue;
        expect(turn.value).toBe(facts[turn.attribute]);
        for (const wrong of VALUES[turn.attribute].filter((v) => v !== turn.value)) {
          expect(answerMatches(turn.attribute, wrong, turn.a), `${turn.a} is not ${turn.attribute}=${wrong}`).toBe(false);
        }
      }
    }
  });

  test('pictures without sound are never asked about sound, images never about motion', () => {
    for (const scene of scenes) {
      const asked = new Set(conversation(scene).map((t) => t.attribute));
      if (!scene.audio) for (const a of ['sound', 'pitch', 'beepCount'] as const) expect(asked.has(a)).toBe(false);
      if (scene.kind !== 'video' && scene.kind !== 'silent-video') expect(asked.has('motion')).toBe(false);
      if (!scene.picture) for (const a of ['colour', 'shape', 'count'] as const) expect(asked.has(a)).toBe(false);
    }
  });
});

describe('answerMatches', () => {
  test.each([
    ['motion', 'right', 'It moves to the right.'],
    ['motion', 'right', 'rightwards'],
    ['motion', 'right', 'The square travels from left to right.'],
    ['motion', 'left', 'It goes from right to the left'],
    ['motion', 'up', 'It is rising towards the top of the frame.'],
    ['motion', 'down', 'The circles fall.'],
    ['motion', 'still', "It doesn't move at all."],
    ['motion', 'still', 'The triangle is stationary'],
    ['count', '2', 'Two.'],
    ['count', '2', 'I can see 2 squares'],
    ['count', '1', 'There is a single circle.'],
    ['count', '1', 'a red circle'],
    ['count', '3', 'three triangles, and I hear two beeps'],
    ['beepCount', '2', 'It beeps twice.'],
    ['beepCount', '3', 'I hear 3 beeps from one blue square'],
    ['beepCount', '1', 'Just one.'],
    ['colour', 'yellow', 'They are YELLOW!'],
    ['shape', 'circle', 'A round disc.'],
    ['pitch', 'high', 'A high-pitched whistle'],
    ['pitch', 'low', 'a deep hum'],
    ['sound', 'silence', 'Nothing, it is silent.'],
    ['sound', 'tone', 'A steady tone.'],
    ['sound', 'beeps', 'Some beeping.'],
  ] as const)('accepts %s=%s in "%s"', (attribute, value, text) => {
    expect(answerMatches(attribute, value, text)).toBe(true);
  });

  test.each([
    ['motion', 'right', 'It moves to the left.'],
    ['motion', 'right', 'It moves right, then left.'],
    ['motion', 'still', 'It moves up.'],
    ['count', '2', 'Three.'],
    ['count', '2', 'one circle and two beeps'],
    ['beepCount', '2', 'two circles and three beeps'],
    ['colour', 'red', 'red or blue'],
    ['colour', 'red', 'I do not know.'],
    ['shape', 'square', 'A triangle.'],
    ['pitch', 'high', 'It is low.'],
    ['sound', 'beeps', 'A tone.'],
  ] as const)('rejects %s=%s in "%s"', (attribute, value, text) => {
    expect(answerMatches(attribute, value, text)).toBe(false);
  });

  test('a description must name every fact', () => {
    const value = 'colour=red;shape=circle;count=1;motion=right;sound=tone;pitch=high';
    expect(answerMatches('description', value, 'A red circle moves to the right while a high tone sounds.')).toBe(true);
    expect(answerMatches('description', value, 'A red circle moves to the right while a low tone sounds.')).toBe(false);
    expect(answerMatches('description', value, 'A red circle moves to the right.')).toBe(false);
  });

  test('unknown attributes and values are INVALID_ARGUMENT', () => {
    expect(() => answerMatches('size' as Attribute, 'big', 'big')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => answerMatches('colour', 'purple', 'purple')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => answerMatches('colour', 'red', 5 as unknown as string)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
