import { ReplyError } from "ioredis";

// ioredis re-exports redis-errors' ReplyError, which ships no type declarations (it is `any`).
const ReplyErrorClass = ReplyError as new (message: string) => Error;

/** A Redis error reply, as ioredis rejects a command with it. */
export function replyError(message: string): Error {
    return new ReplyErrorClass(message);
}
