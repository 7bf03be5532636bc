// One error type for every failed call: the gRPC code plus the server's
// google.rpc details (ErrorInfo reason, one BadRequest field violation per
// bad field), decoded with the generated google/rpc schemas.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import type { Status } from "./gen/google/rpc/status_pb.js";

export interface FieldViolation {
  field: string;
  description: string;
  reason: string;
}

export class ImageClientError extends Error {
  readonly code: Code;
  /** e.g. "InvalidArgument", "Canceled" (Connect's names for gRPC codes). */
  readonly codeName: string;
  /** ErrorInfo.reason, e.g. "INVALID_SIZE", "QUEUE_FULL"; "" when none was sent. */
  readonly reason: string;
  readonly domain: string;
  readonly violations: FieldViolation[];

  constructor(cause: ConnectError) {
    if (isCutStream(cause)) {
      cause = new ConnectError(
        `the connection to the server was lost mid-call (Internal "${cause.rawMessage}", no status from any server): it went away`,
        Code.Unavailable, undefined, [{ desc: ErrorInfoSchema, value: { reason: CONNECTION_LOST } }], cause);
    }
    const info = cause.findDetails(ErrorInfoSchema)[0];
    const violations = cause.findDetails(BadRequestSchema).flatMap((bad) =>
      bad.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })));
    const head = `${Code[cause.code]}${info?.reason ? ` (${info.reason})` : ""}: ${cause.rawMessage}`;
    super([head, ...violations.map((v) => `  ${v.field}: ${v.description} [${v.reason}]`)].join("\n"), { cause });
    this.name = "ImageClientError";
    this.code = cause.code;
    this.codeName = Code[cause.code];
    this.reason = info?.reason ?? "";
    this.domain = info?.domain ?? "";
    this.violations = violations;
  }
}

/**
 * The reason of an Unavailable error for a call whose stream a proxy ended
 * without any status because the server behind it went away mid-call
 * (HAProxy does that when a replica dies); Connect reports it as Internal
 * "protocol error: missing status". Our servers never end a call that way, so
 * it is the transport, and the call may be retried (another replica answers).
 */
export const CONNECTION_LOST = "CONNECTION_LOST";

function isCutStream(err: ConnectError): boolean {
  return err.code === Code.Internal && err.rawMessage === "protocol error: missing status" && err.details.length === 0;
}

/** Wraps whatever a call threw (including an AbortSignal's reason) as an ImageClientError. */
export function toClientError(err: unknown): ImageClientError {
  return err instanceof ImageClientError ? err : new ImageClientError(ConnectError.from(err));
}

/** A google.rpc.Status (a failed operation's `error`) as an ImageClientError. */
export function fromStatus(status: Status): ImageClientError {
  const details = status.details.map((d) => ({ type: d.typeUrl.slice(d.typeUrl.lastIndexOf("/") + 1), value: d.value }));
  const error = new ConnectError(status.message, status.code as Code);
  error.details.push(...details); // as received: findDetails decodes them by type
  return new ImageClientError(error);
}
