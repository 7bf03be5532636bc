// Calls to the shim's /v1 API on this origin, and its errors made readable.
// Every error the API gives has the same body: {error: {code, message, type},
// status: google.rpc.Status}; the Status's BadRequest names each bad field.

import { keyHeaders } from "./key.js";

export interface FieldViolation {
  field: string;
  description: string;
}

interface StatusDetail {
  "@type"?: string;
  reason?: string;
  field_violations?: { field?: string; description?: string }[];
  retry_delay?: string;
}

interface RpcStatus {
  code?: number;
  message?: string;
  details?: StatusDetail[];
}

// google.rpc.Code numbers -> the HTTP status the shim would have answered.
const HTTP_OF_CODE: Record<number, number> = {
  1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
  10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,          // e.g. "invalid_size", "unauthorized", "network"
    message: string,
    readonly violations: FieldViolation[] = [],
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }

  static fromStatus(status: RpcStatus, httpStatus?: number): ApiError {
    const details = status.details ?? [];
    const info = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.ErrorInfo"));
    const bad = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.BadRequest"));
    const retry = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.RetryInfo"));
    const violations = (bad?.field_violations ?? []).map((v) => ({
      field: v.field ?? "", description: v.description ?? "",
    }));
    const retryS = retry?.retry_delay ? Math.ceil(parseFloat(retry.retry_delay)) : null;
    return new ApiError(httpStatus ?? HTTP_OF_CODE[status.code ?? 2] ?? 500,
      (info?.reason ?? "unknown").toLowerCase(), status.message ?? "request failed", violations, retryS);
  }
}

type UnauthorizedListener = (error: ApiError) => void;
const unauthorizedListeners: UnauthorizedListener[] = [];

/** Called on every 401, so the page can ask for the key again. */
export function onUnauthorized(listener: UnauthorizedListener): void {
  unauthorizedListeners.push(listener);
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string }; status?: RpcStatus } = {};
  try {
    body = await response.json();
  } catch {
    /* not our JSON (a proxy's page?): fall back to the status line */
  }
  const retryHeader = response.headers.get("Retry-After");
  let error: ApiError;
  if (body.status) {
    error = ApiError.fromStatus(body.status, response.status);
  } else {
    error = new ApiError(response.status, body.error?.code ?? `http_${response.status}`,
      body.error?.message ?? `${response.status} ${response.statusText}`);
  }
  if (body.error?.code) {
    error = new ApiError(error.httpStatus, body.error.code, body.error.message ?? error.message,
      error.violations, error.retryAfterS ?? (retryHeader ? Number(retryHeader) : null));
  }
  if (error.httpStatus === 401) unauthorizedListeners.forEach((l) => l(error));
  return error;
}

/** fetch() with the key; a non-2xx answer throws ApiError. */
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init, headers: { ...keyHeaders(), ...(init.headers as Record<string, string> | undefined) },
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server cannot be reached. Is it still running?");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await call(path, { signal })).json() as Promise<T>;
}

/** POST JSON and read the answer as grpc-gateway NDJSON: yields each
 * `result`, throws ApiError for a final `error` line. Aborting `signal`
 * closes the socket, which cancels the request on the server. */
export async function* postStream<T>(path: string, body: unknown, signal: AbortSignal): AsyncGenerator<T> {
  const response = await call(path, {
    method: "POST", signal, body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
  });
  if (!response.body) throw new ApiError(0, "network", "The browser gave no response stream.");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buffered += value;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        const parsed = JSON.parse(line) as { result?: T; error?: RpcStatus };
        if (parsed.error) throw ApiError.fromStatus(parsed.error);
        if (parsed.result !== undefined) yield parsed.result;
      }
      if (done) break;
    }
  } catch (err) {
    if (err instanceof TypeError) {  // the connection broke mid-stream
      throw new ApiError(0, "network", "The connection to the server broke during the request.");
    }
    throw err;
  } finally {
    reader.releaseLock();
  }
}

/** An image's bytes fetched with the key, as a blob: URL for <img> and downloads. */
export async function imageUrl(filePath: string): Promise<string> {
  const response = await call(filePath);
  return URL.createObjectURL(await response.blob());
}
