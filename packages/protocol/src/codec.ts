import { Build } from 'typebox/schema';
import { Errors } from 'typebox/value';
import type { TSchema } from 'typebox';
import { randomBytes } from 'node:crypto';
import { Envelope, MESSAGE_BODIES, PROTOCOL_VERSION, type Envelope as EnvelopeT, type BodyOf, type Message, type MessageType } from './messages.js';
import { MAX_FRAME_BYTES } from './limits.js';

/**
 * A compiled check and its schema (for the reasons of a failure). Not typebox's Compile: its
 * Validator also keeps the build the check was generated from, for life. Here only the evaluated
 * check stays, and the reasons come from the schema, as the Validator's own Errors does.
 *
 * The evaluated check still keeps its generated source (Code()), a string built piece by piece:
 * V8 holds it as a tree of thousands of concatenations, about 5 times the text's size (375 KB for
 * the dozen message types an agent handles). Reading a character of it makes V8 flatten it in
 * place into one plain string.
 */
interface Validator {
  Check(value: unknown): boolean;
  schema: TSchema;
}
function compile(schema: TSchema): Validator {
  const evaluated = Build(schema).Evaluate();
  const code = evaluated.Code();
  code.charCodeAt(code.length - 1);
  return { Check: (value) => evaluated.Check(value), schema };
}

const envelopeCheck = compile(Envelope);
// Validators are compiled on first use: a process pays only for the message types it handles.
const bodyChecks = new Map<string, Validator>();
function bodyCheck(type: string): Validator | undefined {
  let v = bodyChecks.get(type);
  if (!v && Object.prototype.hasOwnProperty.call(MESSAGE_BODIES, type)) {
    v = compile(MESSAGE_BODIES[type as MessageType]);
    bodyChecks.set(type, v);
  }
  return v;
}

export type DecodeResult = { ok: true; msg: Message } | { ok: false; code: 'too_large' | 'not_json' | 'bad_envelope' | 'unknown_type' | 'bad_body'; error: string; id?: string };

function describe(v: Validator, value: unknown): string {
  const errs = Errors(v.schema, value).slice(0, 5);
  return errs.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ') || 'invalid';
}

/** Parses and validates one frame. Never throws: every failure comes back as a reason. */
export function decodeFrame(data: string | Buffer, maxBytes: number = MAX_FRAME_BYTES): DecodeResult {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > maxBytes) return { ok: false, code: 'too_large', error: `frame of ${size} bytes exceeds ${maxBytes}` };
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return { ok: false, code: 'not_json', error: 'frame is not valid JSON' };
  }
  if (!envelopeCheck.Check(value)) return { ok: false, code: 'bad_envelope', error: `bad envelope: ${describe(envelopeCheck, value)}` };
  const env = value as EnvelopeT;
  const check = bodyCheck(env.type);
  if (!check) return { ok: false, code: 'unknown_type', error: `unknown message type ${JSON.stringify(env.type)}`, id: env.id };
  const body = env.body ?? {};
  if (!check.Check(body)) return { ok: false, code: 'bad_body', error: `bad ${env.type} body: ${describe(check, body)}`, id: env.id };
  return { ok: true, msg: { v: env.v, type: env.type as MessageType, id: env.id, ...(env.re ? { re: env.re } : {}), body } as Message };
}

let counter = 0;
const prefix = randomBytes(4).toString('hex');
/** Message ids: unique per process, cheap, sortable within a connection. */
export function newMessageId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}-${counter.toString(36)}`;
}

export function encodeFrame<T extends MessageType>(type: T, body: BodyOf<T>, opts: { id?: string; re?: string } = {}): string {
  const env: Record<string, unknown> = { v: PROTOCOL_VERSION, type, id: opts.id ?? newMessageId(), body };
  if (opts.re) env.re = opts.re;
  return JSON.stringify(env);
}

/** Validates a body before sending, so a bug on our side shows up here rather than as a refusal there. */
export function checkBody<T extends MessageType>(type: T, body: unknown): body is BodyOf<T> {
  return bodyCheck(type)?.Check(body) ?? false;
}
