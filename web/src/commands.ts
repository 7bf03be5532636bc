// "Copy as curl / grpcurl": the same request again, one candidate, from an
// image's stored parameters. The key stays in an environment variable, never
// in the copied text. References are not stored with an image, so not included.

import type { ImageRecord } from "./types.js";

const KEY_VAR = "CODEX_IMAGE_SERVER_API_KEY";
// The browser cannot see the gRPC port; this is the server's default.
const GRPC_PORT = 17342;

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function requestBody(image: ImageRecord): Record<string, unknown> {
  const body: Record<string, unknown> = { prompt: image.prompt, count: 1 };
  if (image.requested_size) body.size = image.requested_size;
  if (image.aspect) body.aspect = image.aspect;
  if (image.quality) body.quality = image.quality;
  if (image.output_format) body.output_format = image.output_format;
  return body;
}

export function curlCommand(image: ImageRecord, authRequired: boolean): string {
  const lines = [`curl -sS ${shellQuote(`${location.origin}/v1/images/generate`)}`,
    `-H 'Content-Type: application/json'`];
  if (authRequired) lines.push(`-H "X-API-Key: $${KEY_VAR}"`);
  lines.push(`-d ${shellQuote(JSON.stringify(requestBody(image)))}`);
  return lines.join(" \\\n  ");
}

export function grpcurlCommand(image: ImageRecord, authRequired: boolean): string {
  const lines = ["grpcurl -plaintext"];
  if (authRequired) lines.push(`-H "x-api-key: $${KEY_VAR}"`);
  lines.push(`-d ${shellQuote(JSON.stringify(requestBody(image)))}`);
  lines.push(`${location.hostname}:${GRPC_PORT} codeximage.v1.ImageService/Generate`);
  return lines.join(" \\\n  ");
}

/** The clipboard where the browser allows it (a secure context, a focused
 * page); false otherwise, and the caller shows the text to copy by hand. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
