// One error type for every failed call: the gRPC code plus the server's
// google.rpc details (ErrorInfo reason, one BadRequest field violation per
// bad field), decoded with the generated google/rpc schemas.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

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

/** Wraps whatever a call threw (including an AbortSignal's reason) as an ImageClientError. */
export function toClientError(err: unknown): ImageClientError {
  return err instanceof ImageClientError ? err : new ImageClientError(ConnectError.from(err));
}
