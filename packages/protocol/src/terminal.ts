/**
 * Terminal sessions over the agent link. The agent opens a pty (capability `terminal`), streams
 * its output as `term.output`, and stops reading the pty while more than a window of output is
 * unacknowledged: the hub sends `term.ack` as the browser's socket drains, so a slow reader holds
 * the shell back instead of growing buffers anywhere.
 */
import Type from 'typebox';
import { LIMITS } from './limits.js';
import { Account } from './actions.js';

const SessionId = Type.String({ minLength: 8, maxLength: LIMITS.id, pattern: '^[A-Za-z0-9_-]+$' });
const Cols = Type.Integer({ minimum: 2, maximum: 1000 });
const Rows = Type.Integer({ minimum: 2, maximum: 500 });

/** Output the agent may have sent and not had acknowledged before it pauses the pty. */
export const TERMINAL_WINDOW_BYTES = 256 * 1024;

export const TermOpenBody = Type.Object(
  {
    sessionId: SessionId,
    cols: Cols,
    rows: Rows,
    /** run the login shell of this user (default: the agent's user) */
    user: Type.Optional(Account),
  },
  { additionalProperties: false },
);
export const TermOpenedBody = Type.Object({ sessionId: SessionId, pid: Type.Integer({ minimum: 1 }), shell: Type.String({ maxLength: 4096 }), user: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
export const TermInputBody = Type.Object({ sessionId: SessionId, data: Type.String({ maxLength: 64 * 1024 }) }, { additionalProperties: false });
export const TermOutputBody = Type.Object({ sessionId: SessionId, seq: Type.Integer({ minimum: 0 }), data: Type.String({ maxLength: 256 * 1024 }) }, { additionalProperties: false });
export const TermAckBody = Type.Object({ sessionId: SessionId, bytes: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });
export const TermResizeBody = Type.Object({ sessionId: SessionId, cols: Cols, rows: Rows }, { additionalProperties: false });
export const TermCloseBody = Type.Object({ sessionId: SessionId }, { additionalProperties: false });
export const TermExitBody = Type.Object(
  {
    sessionId: SessionId,
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.Integer(), Type.Null()]),
    /** why it ended when the shell did not simply exit: refused, idle, closed, error */
    reason: Type.Optional(Type.String({ maxLength: LIMITS.longText })),
    refused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const TERMINAL_BODIES = {
  'term.open': TermOpenBody,
  'term.opened': TermOpenedBody,
  'term.input': TermInputBody,
  'term.output': TermOutputBody,
  'term.ack': TermAckBody,
  'term.resize': TermResizeBody,
  'term.close': TermCloseBody,
  'term.exit': TermExitBody,
};
export const TERMINAL_HUB_TO_AGENT = ['term.open', 'term.input', 'term.ack', 'term.resize', 'term.close'] as const;
export const TERMINAL_AGENT_TO_HUB = ['term.opened', 'term.output', 'term.exit'] as const;
