/**
 * The world's language: stage-1 captions and stage-2 question/answer pairs from templates (several
 * phrasings each, chosen by the scene's seed), and {@link answerMatches}, which decides whether a
 * free-text answer names an attribute's value (synonyms, numbers as digits or words).
 * @module
 */
import { invalidArgument } from '../errors.js';
import {
  ATTRIBUTES, type Attribute, COLOURS, Rng, type Scene, sceneFacts, type ScenePicture, type SceneFacts, SHAPES, type Sound,
} from './scene.js';

/** What a question asks: one attribute, or a description naming all of them. */
export type QaAttribute = Attribute | 'description';

/** One turn of a stage-2 conversation, with the value its answer must name. */
export interface QaPair {
  /** The question. */
  q: string;
  /** The reference answer. */
  a: string;
  attribute: QaAttribute;
  /**
   * The expected value (`'red'`, `'3'`, ...). For `description`: every fact of the scene as
   * `attribute=value` joined by `;` (see {@link describeFacts}).
   */
  value: string;
}

/** Salts of the phrasing PRNG streams (kept apart from the scene's own stream). */
const CAPTION_SALT = 0x0c4a7105;
const CONVERSATION_SALT = 0x51a9e2b3;

const NUMBER_WORDS = ['zero', 'one', 'two', 'three'] as const;

/** A phrase with its singular and plural verb forms: [one object, several objects]. */
type Inflected = readonly [string, string];

const MOTION_PHRASES: Readonly<Record<ScenePicture['motion'], readonly Inflected[]>> = {
  right: [['moves to the right', 'move to the right'], ['slides rightwards', 'slide rightwards'], ['travels from left to right', 'travel from left to right']],
  left: [['moves to the left', 'move to the left'], ['slides leftwards', 'slide leftwards'], ['travels from right to left', 'travel from right to left']],
  up: [['moves up', 'move up'], ['rises', 'rise'], ['travels upwards', 'travel upwards']],
  down: [['moves down', 'move down'], ['falls', 'fall'], ['sinks downwards', 'sink downwards']],
  still: [['stays still', 'stay still'], ['does not move', 'do not move'], ['sits motionless', 'sit motionless']],
};

const MOTION_ANSWERS: Readonly<Record<ScenePicture['motion'], readonly string[]>> = {
  right: ['To the right.', 'It moves to the right.', 'Rightwards, from left to right.'],
  left: ['To the left.', 'It moves to the left.', 'Leftwards, from right to left.'],
  up: ['Up.', 'It moves upwards.', 'It rises towards the top.'],
  down: ['Down.', 'It moves downwards.', 'It falls towards the bottom.'],
  still: ['It does not move.', 'It stays still.', 'Nowhere: it is stationary.'],
};

/** A capitalised first letter. */
function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "a red circle", "one red circle", "two red circles", "3 red circles". */
function subject(picture: ScenePicture, rng: Rng): string {
  const n = picture.objects.length;
  const noun = `${picture.colour} ${picture.shape}`;
  if (n === 1) return rng.pick([`a ${noun}`, `one ${noun}`, `a single ${noun}`]);
  return `${rng.pick([NUMBER_WORDS[n], String(n)])} ${noun}s`;
}

function motionPhrase(picture: ScenePicture, rng: Rng): string {
  return rng.pick(MOTION_PHRASES[picture.motion])[picture.objects.length === 1 ? 0 : 1];
}

/** "two high beeps", "a single low beep". */
function beepsPhrase(sound: Extract<Sound, { type: 'beeps' }>, rng: Rng): string {
  const n = sound.beeps.length;
  if (n === 1) return rng.pick([`a single ${sound.pitch} beep`, `one ${sound.pitch} beep`]);
  return `${rng.pick([NUMBER_WORDS[n], String(n)])} ${sound.pitch} beeps`;
}

/** A clause about the sound: "a high tone sounds", "two low beeps sound", "all is silent". */
function soundClause(sound: Sound, rng: Rng): string {
  switch (sound.type) {
    case 'silence': return rng.pick(['all is silent', 'there is no sound']);
    case 'tone': return rng.pick([`a ${sound.pitch} tone sounds`, `a ${sound.pitch}-pitched tone plays`, `a steady ${sound.pitch} tone is heard`]);
    case 'beeps': {
      const phrase = beepsPhrase(sound, rng);
      return rng.pick([`${phrase} ${sound.beeps.length === 1 ? 'sounds' : 'sound'}`, `you hear ${phrase}`]);
    }
  }
}

/** The sound on its own, as a sentence: "A steady high tone.", "Two low beeps.", "Silence." */
function soundSentence(sound: Sound, rng: Rng): string {
  switch (sound.type) {
    case 'silence': return rng.pick(['Silence.', 'Nothing, it is silent.', 'There is no sound.']);
    case 'tone': return rng.pick([`A ${sound.pitch} tone.`, `A steady ${sound.pitch}-pitched tone.`, `A continuous ${sound.pitch} tone plays.`]);
    case 'beeps': return `${capitalise(beepsPhrase(sound, rng))}.`;
  }
}

/** The text of a caption, with its phrasing drawn from `rng`. */
function captionText(scene: Scene, rng: Rng): string {
  const { picture, audio } = scene;
  if (!picture) return soundSentence(audio!.sound, rng);
  const who = subject(picture, rng);
  if (scene.kind === 'image') {
    return rng.pick([`A picture of ${who}.`, `An image showing ${who} on a dark background.`, `${capitalise(who)} on a plain dark background.`]);
  }
  const moving = `${who} ${motionPhrase(picture, rng)}`;
  if (!audio) return `${capitalise(moving)}.`;
  const sound = soundClause(audio.sound, rng);
  return rng.pick([`${capitalise(moving)} while ${sound}.`, `${capitalise(moving)}; ${sound}.`, `On a dark background, ${moving} while ${sound}.`]);
}

/**
 * The stage-1 caption of a scene: one sentence naming every fact of it, e.g. "A red circle moves to
 * the right while a high tone sounds." Deterministic for a scene.
 *
 * @example
 * ```ts
 * caption(makeScene('train', 1, 0)); // "Two green triangles slide leftwards."
 * ```
 */
export function caption(scene: Scene): string {
  return captionText(scene, new Rng(scene.sampleSeed ^ CAPTION_SALT));
}

/** The facts of a scene as the `value` of a description: `colour=red;shape=circle;count=1;...`. */
export function describeFacts(facts: SceneFacts): string {
  return ATTRIBUTES.filter((a) => facts[a] !== undefined).map((a) => `${a}=${facts[a]}`).join(';');
}

/** The noun a question uses for the sample. */
function mediaNoun(scene: Scene): string {
  return scene.kind === 'image' ? 'image' : scene.kind === 'audio' ? 'sound' : 'video';
}

/** A question and answer about one attribute (the attribute must apply to the scene). */
function askAbout(attribute: Attribute, scene: Scene, rng: Rng): Omit<QaPair, 'attribute' | 'value'> {
  const picture = scene.picture;
  const sound = scene.audio?.sound;
  const several = (picture?.objects.length ?? 1) > 1;
  const it = several ? 'they' : 'it';
  switch (attribute) {
    case 'colour': return {
      q: rng.pick(['What colour is the shape?', several ? 'What color are the objects?' : 'What color is the object?', `What is the colour of the ${picture!.shape}${several ? 's' : ''}?`]),
      a: rng.pick([`${capitalise(picture!.colour)}.`, `${capitalise(it)} ${several ? 'are' : 'is'} ${picture!.colour}.`]),
    };
    case 'shape': return {
      q: rng.pick(['What shape is it?', 'Which shape do you see?', `What kind of shape is in the ${mediaNoun(scene)}?`]),
      a: several ? rng.pick([`${capitalise(picture!.shape)}s.`, `They are ${picture!.shape}s.`]) : rng.pick([`A ${picture!.shape}.`, `It is a ${picture!.shape}.`]),
    };
    case 'count': {
      const n = picture!.objects.length;
      return {
        q: rng.pick(['How many shapes are there?', 'How many objects do you see?', `How many ${picture!.shape}s are there?`]),
        a: rng.pick([`${capitalise(NUMBER_WORDS[n]!)}.`, `${n}.`, `There ${n === 1 ? 'is one' : `are ${NUMBER_WORDS[n]}`} ${picture!.shape}${n === 1 ? '' : 's'}.`]),
      };
    }
    case 'motion': return {
      q: rng.pick(['Which way does it move?', `In which direction does the ${picture!.shape} move?`, `Where ${several ? 'are the shapes' : 'is the shape'} going?`, 'Does the shape move?']),
      a: rng.pick(MOTION_ANSWERS[picture!.motion]),
    };
    case 'sound': return {
      q: rng.pick(['What do you hear?', 'What sound is there?', 'Is there any sound?']),
      a: soundSentence(sound!, rng),
    };
    case 'pitch': {
      const pitch = (sound as Exclude<Sound, { type: 'silence' }>).pitch;
      return {
        q: rng.pick([sound!.type === 'tone' ? 'Is the tone high or low?' : 'Are the beeps high or low?', 'How high is the sound?', 'Is the sound high-pitched or low-pitched?']),
        a: rng.pick([`${capitalise(pitch)}.`, `It is ${pitch}-pitched.`, `A ${pitch} sound.`]),
      };
    }
    case 'beepCount': {
      const n = (sound as Extract<Sound, { type: 'beeps' }>).beeps.length;
      return {
        q: rng.pick(['How many beeps do you hear?', 'How many times does it beep?', 'Count the beeps.']),
        a: rng.pick([`${capitalise(NUMBER_WORDS[n]!)}.`, `${n} beep${n === 1 ? '' : 's'}.`, `It beeps ${['', 'once', 'twice', 'three times'][n]}.`]),
      };
    }
  }
}

/**
 * The stage-2 conversation of a scene: one question per fact that applies (colour, shape, count,
 * motion, sound, pitch, beep count) in a shuffled order, then a request to describe it answered
 * with a caption. Each turn carries the attribute it asks about and the value its answer must name.
 *
 * @example
 * ```ts
 * for (const { q, a, attribute, value } of conversation(makeScene('train', 1, 3))) console.log(q, a, attribute, value);
 * ```
 */
export function conversation(scene: Scene): QaPair[] {
  const rng = new Rng(scene.sampleSeed ^ CONVERSATION_SALT);
  const facts = sceneFacts(scene);
  const asked = ATTRIBUTES.filter((attribute) => facts[attribute] !== undefined);
  for (let i = asked.length - 1; i > 0; i--) { // Fisher–Yates
    const j = rng.int(0, i);
    [asked[i], asked[j]] = [asked[j]!, asked[i]!];
  }
  const turns: QaPair[] = asked.map((attribute) => ({ ...askAbout(attribute, scene, rng), attribute, value: facts[attribute]! }));
  const noun = mediaNoun(scene);
  const describe = rng.pick(scene.kind === 'audio'
    ? ['Describe the sound.', 'What do you hear in this audio?']
    : [`Describe the ${noun}.`, `What is in this ${noun}?`, scene.audio ? 'Describe what you see and hear.' : `Describe this ${noun} in detail.`]);
  turns.push({ q: describe, a: captionText(scene, rng), attribute: 'description', value: describeFacts(facts) });
  return turns;
}

const COLOUR_WORDS = COLOURS.join('|');
const SHAPE_WORDS = `${SHAPES.join('|')}|shape|object`;
const NUMBER_OR_ARTICLE = 'a|an|one|two|three|single|1|2|3';

/** Words of each value of each attribute, as regular expressions over normalised text (see {@link normalise}). */
const VOCABULARY: Readonly<Record<Attribute, Readonly<Record<string, readonly string[]>>>> = {
  colour: Object.fromEntries(COLOURS.map((c) => [c, [c]])),
  shape: {
    circle: ['circles?', 'round', 'discs?', 'disks?', 'dots?', 'balls?'],
    square: ['squares?', 'box(?:es)?'],
    triangle: ['triangles?', 'triangular'],
  },
  count: {
    1: ['one', '1', 'single', `an? (?:(?:${COLOUR_WORDS}) )?(?:${SHAPES.join('|')})`],
    2: ['two', '2', 'pair', 'couple'],
    3: ['three', '3'],
  },
  motion: {
    right: ['right', 'rightwards?', 'left to (?:the )?right', 'eastwards?'],
    left: ['left', 'leftwards?', 'right to (?:the )?left', 'westwards?'],
    up: ['up', 'upwards?', 'rises?', 'rising', 'ascend(?:s|ing)?', 'bottom to (?:the )?top', 'towards the top'],
    down: ['down', 'downwards?', 'falls?', 'falling', 'sinks?', 'sinking', 'descend(?:s|ing)?', 'top to (?:the )?bottom', 'towards the bottom'],
    still: ['still', "(?:does not|doesn't|do not|don't|does n't) move", 'not moving', 'stationary', 'motionless', 'static', 'in place', 'no motion'],
  },
  sound: {
    silence: ['silent', 'silence', 'no sound', 'nothing', 'quiet'],
    tone: ['tones?', 'hum', 'note', 'whistle'],
    beeps: ['beeps?', 'beeping', 'bleeps?'],
  },
  pitch: {
    high: ['high', 'high pitched', 'higher', 'shrill'],
    low: ['low', 'low pitched', 'lower', 'deep'],
  },
  beepCount: {
    1: ['one', '1', 'once', 'single', 'a beep'],
    2: ['two', '2', 'twice', 'pair'],
    3: ['three', '3', 'thrice', 'three times'],
  },
};

/**
 * Phrases removed before an attribute is looked for, so that one number does not answer for
 * another: beep counts are not object counts, object counts are not beep counts.
 */
const MASKS: Partial<Record<Attribute, RegExp>> = {
  count: new RegExp(`\\b(?:(?:${NUMBER_OR_ARTICLE}) )?(?:(?:high|low)(?: pitched)? )?beeps?\\b|\\b(?:once|twice|thrice|three times)\\b`, 'g'),
  beepCount: new RegExp(`\\b(?:${NUMBER_OR_ARTICLE}) (?:(?:${COLOUR_WORDS}) )?(?:${SHAPE_WORDS})s?\\b`, 'g'),
};

/** Each (value, pattern) of an attribute, longest pattern first, so "left to right" is read before "left". */
const PATTERNS: Readonly<Record<Attribute, ReadonlyArray<readonly [string, RegExp]>>> = Object.fromEntries(
  ATTRIBUTES.map((attribute) => [attribute, Object.entries(VOCABULARY[attribute])
    .flatMap(([value, words]) => words.map((word) => [value, word] as const))
    .sort((a, b) => b[1].length - a[1].length)
    .map(([value, word]) => [value, new RegExp(`\\b${word}\\b`, 'g')] as const)]),
) as unknown as Record<Attribute, ReadonlyArray<readonly [string, RegExp]>>;

/** Lower case, hyphens and punctuation as spaces, single spaces. */
function normalise(text: string): string {
  return ` ${text.toLowerCase().replace(/[^a-z0-9']+/g, ' ').trim()} `;
}

/** The values of an attribute that a text names. */
export function valuesNamed(attribute: Attribute, text: string): Set<string> {
  let rest = normalise(text);
  const mask = MASKS[attribute];
  if (mask) rest = rest.replace(mask, ' ');
  const found = new Set<string>();
  for (const [value, pattern] of PATTERNS[attribute]) {
    rest = rest.replace(pattern, () => {
      found.add(value);
      return ' ';
    });
  }
  return found;
}

/**
 * Whether a free-text answer names `value` for `attribute` and no other value of it: "Rightwards."
 * and "from left to right" match `motion=right`; "Two." and "2 squares" match `count=2`; "red or
 * blue" matches nothing. For `description`, `value` is {@link describeFacts}' string and every
 * fact in it must match.
 *
 * @example
 * ```ts
 * answerMatches('motion', 'right', 'It slides to the right.'); // true
 * answerMatches('beepCount', '2', 'I hear three beeps.');       // false
 * ```
 * @throws VideoLlamaError `INVALID_ARGUMENT` for an unknown attribute or value.
 */
export function answerMatches(attribute: QaAttribute, value: string, text: string): boolean {
  if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
  if (attribute === 'description') {
    return value.split(';').every((fact) => {
      const [name, expected] = fact.split('=');
      return answerMatches(name as Attribute, expected!, text);
    });
  }
  if (!ATTRIBUTES.includes(attribute)) throw invalidArgument('attribute', `one of ${[...ATTRIBUTES, 'description'].join(', ')}`, attribute);
  if (!(value in VOCABULARY[attribute])) {
    throw invalidArgument('value', `one of ${Object.keys(VOCABULARY[attribute]).join(', ')} for ${attribute}`, value);
  }
  const named = valuesNamed(attribute, text);
  return named.size === 1 && named.has(value);
}
