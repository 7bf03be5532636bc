// One sentence per error the API can give: what happened and what to do.
// The server's own message is shown beside it, so nothing is lost.

import { ApiError } from "./api.js";

const HINTS: Record<string, string> = {
  network: "The server cannot be reached.",
  unauthorized: "The server rejected the API key. Enter the right key.",
  unauthenticated: "The server rejected the API key. Enter the right key.",
  permission_denied: "This key may not do that.",
  invalid_json: "The request was malformed.",
  missing_prompt: "Write a prompt, or add a reference image.",
  invalid_prompt: "The prompt is not accepted.",
  invalid_count: "Choose how many images, within the allowed range.",
  invalid_size: "That size is not allowed; see the field.",
  invalid_aspect: "That aspect is not allowed; see the field.",
  invalid_quality: "That quality is not offered.",
  invalid_output_format: "That format is not offered.",
  invalid_output: "That format is not offered.",
  invalid_reference: "A reference image was refused; see the references.",
  too_many_references: "Too many reference images.",
  invalid_request_id: "The request id is not accepted.",
  invalid_argument: "The request was refused; see the fields.",
  body_too_large: "The request is too large: use fewer or smaller references.",
  not_found: "It does not exist (any more).",
  queue_full: "The server is busy and its queue is full. Try again shortly.",
  resource_exhausted: "The server is busy. Try again shortly.",
  quota_exhausted: "The Codex account's usage limit is reached.",
  rate_limited: "Too many requests for this key. Try again later.",
  request_canceled: "The request was cancelled.",
  cancelled: "The request was cancelled.",
  codex_timeout: "Codex took longer than the server's time limit.",
  deadline_exceeded: "The server's time limit passed.",
  codex_no_image: "Codex finished without producing an image. Try again or rephrase.",
  codex_unsupported: "The server's Codex version made an image this server cannot read; see Status.",
  moderation_blocked: "The image model's safety system refused the prompt. Change it and try again.",
  codex_exec_failed: "Codex failed while generating.",
  codex_spawn_failed: "The server could not start Codex.",
  codex_forbidden: "The image model refused the request.",
  content_policy: "The image model refused the prompt.",
  not_logged_in: "Codex on the server is not logged in.",
  unavailable: "The server is not ready to generate; see Status.",
  shutting_down: "The server is shutting down.",
  unimplemented: "The server does not offer this yet.",
  method_not_allowed: "The server does not offer this yet.",
  internal: "The server failed unexpectedly; its log has the details.",
};

/** "Hint (server message)", and the retry time when the server gave one. */
export function describe(error: unknown): string {
  if (!(error instanceof ApiError)) return `Unexpected error: ${String(error)}`;
  const hint = HINTS[error.code] ?? (error.httpStatus >= 500 ? "The server failed." : "The request was refused.");
  const status = error.httpStatus ? ` [${error.httpStatus} ${error.code}]` : "";
  const retry = error.retryAfterS ? ` Retry in ${error.retryAfterS} s.` : "";
  return `${hint}${retry} ${error.message}${status}`;
}
