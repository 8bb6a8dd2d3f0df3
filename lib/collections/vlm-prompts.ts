/**
 * The prompts the collections pipeline sends to the VLM, and the parsers of its replies.
 *
 * Each prompt's user text starts with a `Task: <kind>` line and carries its inputs on machine-readable lines
 * (`Keys: color, shape`, `Collection attributes: {"color":"red"}`, `Collection names: [...]`). A real VLM simply
 * reads them as part of the instructions; the protocol stand-in (vlm-stand-in.ts) parses them to answer from the
 * ground truth. Changing the wording of a prompt changes what a model answers: bump the run's `promptVersion` so
 * the extraction cache does not serve answers to the old prompt.
 */
import { z } from 'zod';
import type { VlmMessage } from './vlm-client.js';
import { normaliseAttribute, type Attributes, type CollectionsQuarantineReason } from './types.js';

/** The `Task:` line value of each prompt kind. */
export const PROMPT_KIND = {
  extract: 'extract-attributes',
  repair: 'repair-json',
  verify: 'verify-membership',
  judge: 'judge-collections',
} as const;
export type PromptKind = keyof typeof PROMPT_KIND;

/** The prompt kind of a user message's text (its `Task:` line), or undefined. */
export function detectPromptKind(text: string): PromptKind | undefined {
  const task = readPromptLine(text, 'Task');
  return (Object.keys(PROMPT_KIND) as PromptKind[]).find((k) => PROMPT_KIND[k] === task);
}

/** The value of the first `<name>: <value>` line of a prompt, trimmed. */
export function readPromptLine(text: string, name: string): string | undefined {
  const prefix = `${name}:`;
  for (const line of text.split('\n')) if (line.startsWith(prefix)) return line.slice(prefix.length).trim();
  return undefined;
}

/** An image to send with a prompt. */
export interface PromptImage {
  bytes: Uint8Array;
  mimeType: string;
}

const JSON_ONLY = 'Reply with one JSON object and nothing else: no prose, no code fences.';

/** Text on one line (titles and descriptions must not break the machine-readable lines). */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The extraction request: the item's image, title and description, and the keys to extract. */
export function extractionMessages(input: {
  keys: readonly string[];
  title: string;
  description: string;
  image: PromptImage;
}): VlmMessage[] {
  const keys = input.keys.map(normaliseAttribute);
  return [
    {
      role: 'system',
      content:
        'You label product catalog items for search. You look at the product image first and use the title and ' +
        'description as hints. ' +
        JSON_ONLY,
    },
    {
      role: 'user',
      content: [
        {
          type: 'text',
          text: [
            `Task: ${PROMPT_KIND.extract}`,
            `Keys: ${keys.join(', ')}`,
            `Title: ${oneLine(input.title)}`,
            `Description: ${oneLine(input.description)}`,
            '',
            'For each key, give the value that describes the product in the image as one short lower-case word or ' +
              'phrase. Leave out a key you cannot tell from the image. Reply as',
            `{"attributes": {${keys.map((k) => `"${k}": "<value>"`).join(', ')}}}`,
          ].join('\n'),
        },
        { type: 'image', bytes: input.image.bytes, mimeType: input.image.mimeType },
      ],
    },
  ];
}

/** The membership question of a borderline candidate: does the item in the image belong to the collection? */
export function verificationMessages(input: {
  collectionName: string;
  attributes: Attributes;
  image: PromptImage;
}): VlmMessage[] {
  return [
    {
      role: 'system',
      content: 'You check whether a product belongs to a catalog collection, from its image. ' + JSON_ONLY,
    },
    {
      role: 'user',
      content: [
        {
          type: 'text',
          text: [
            `Task: ${PROMPT_KIND.verify}`,
            `Collection: ${oneLine(input.collectionName)}`,
            `Collection attributes: ${JSON.stringify(input.attributes)}`,
            '',
            'Does the product in the image have every one of these attributes? Reply as',
            '{"answer": "yes" or "no", "confidence": <a number from 0 to 1>}',
          ].join('\n'),
        },
        { type: 'image', bytes: input.image.bytes, mimeType: input.image.mimeType },
      ],
    },
  ];
}

/** The judge request: are these proposed collection names useful for shoppers? Text only. */
export function judgeMessages(names: readonly string[]): VlmMessage[] {
  return [
    {
      role: 'system',
      content:
        'You review proposed collection names for a product catalog: keep a name when it reads as a coherent, ' +
        'useful way for a shopper to browse products; drop names that are nonsense, contradictory or not about ' +
        'the product. ' +
        JSON_ONLY,
    },
    {
      role: 'user',
      content: [
        `Task: ${PROMPT_KIND.judge}`,
        `Collection names: ${JSON.stringify(names)}`,
        '',
        'Give one verdict per name, in the same order. Reply as',
        '{"verdicts": [{"name": "<name>", "keep": true or false, "reason": "<short reason when dropped>"}]}',
      ].join('\n'),
    },
  ];
}

/**
 * The repair request: the original conversation, the unusable reply as the assistant's turn, and an instruction to
 * answer again with valid JSON only.
 */
export function repairMessages(original: readonly VlmMessage[], badReply: string, problem: string): VlmMessage[] {
  return [
    ...original,
    { role: 'assistant', content: badReply },
    {
      role: 'user',
      content: [
        `Task: ${PROMPT_KIND.repair}`,
        `Problem: ${oneLine(problem).slice(0, 300)}`,
        '',
        'Your previous reply could not be used. Answer the same question again, as the JSON object described ' +
          'above and nothing else.',
      ].join('\n'),
    },
  ];
}

/** A parsed reply, or why it cannot be used (the quarantine reason if the repair fails too). */
export type ParseResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: Extract<CollectionsQuarantineReason, 'malformed-json' | 'schema-invalid'>; error: string };

/** Parses JSON, tolerating a Markdown code fence around it (models add one despite the instructions). */
function parseJson(content: string): { ok: true; value: unknown } | { ok: false; error: string } {
  let text = content.trim();
  const fenced = /^```[a-zA-Z]*\s*\n?([\s\S]*?)\n?```$/.exec(text);
  if (fenced) text = fenced[1]!.trim();
  if (text === '') return { ok: false, error: 'the reply is empty' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: `the reply is not JSON (${(err as Error).message})` };
  }
}

function parseWith<T>(content: string, schema: z.ZodType<T>): ParseResult<T> {
  const json = parseJson(content);
  if (!json.ok) return { ok: false, reason: 'malformed-json', error: json.error };
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      reason: 'schema-invalid',
      error: `the reply does not match the schema: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    };
  }
  return { ok: true, value: parsed.data };
}

/** The extraction reply: attribute values are strings; `null` means the model could not tell. */
export const ExtractionReply = z.object({ attributes: z.record(z.string(), z.string().nullable()) });

/**
 * Parses an extraction reply into normalised attributes of the requested keys: keys and values are normalised,
 * unknown keys, `null` and empty values are dropped, missing keys are allowed; a non-string value is invalid.
 */
export function parseExtractionReply(content: string, keys: readonly string[]): ParseResult<Attributes> {
  const parsed = parseWith(content, ExtractionReply);
  if (!parsed.ok) return parsed;
  const wanted = new Set(keys.map(normaliseAttribute));
  const attributes: Attributes = {};
  for (const [rawKey, rawValue] of Object.entries(parsed.value.attributes)) {
    const key = normaliseAttribute(rawKey);
    if (!wanted.has(key) || rawValue === null) continue;
    const value = normaliseAttribute(rawValue);
    if (value !== '') attributes[key] = value;
  }
  return { ok: true, value: attributes };
}

/** The verification reply. */
export const VerificationReply = z.object({
  answer: z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(['yes', 'no'])),
  confidence: z.number().min(0).max(1),
});
export type VerificationReply = z.infer<typeof VerificationReply>;

export function parseVerificationReply(content: string): ParseResult<VerificationReply> {
  return parseWith(content, VerificationReply);
}

/** The judge reply. */
export const JudgeReply = z.object({
  verdicts: z.array(z.object({ name: z.string(), keep: z.boolean(), reason: z.string().optional() })),
});
export type JudgeReply = z.infer<typeof JudgeReply>;

export function parseJudgeReply(content: string): ParseResult<JudgeReply> {
  return parseWith(content, JudgeReply);
}
