import { keyHeaders } from "./key.js";
const HTTP_OF_CODE = {
    1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
    10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};
export class ApiError extends Error {
    httpStatus;
    code;
    violations;
    retryAfterS;
    constructor(httpStatus, code, message, violations = [], retryAfterS = null) {
        super(message);
        this.httpStatus = httpStatus;
        this.code = code;
        this.violations = violations;
        this.retryAfterS = retryAfterS;
    }
    static fromStatus(status, httpStatus) {
        const details = status.details ?? [];
        const info = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.ErrorInfo"));
        const bad = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.BadRequest"));
        const retry = details.find((d) => (d["@type"] ?? "").endsWith("google.rpc.RetryInfo"));
        const violations = (bad?.field_violations ?? []).map((v) => ({
            field: v.field ?? "", description: v.description ?? "",
        }));
        const retryS = retry?.retry_delay ? Math.ceil(parseFloat(retry.retry_delay)) : null;
        return new ApiError(httpStatus ?? HTTP_OF_CODE[status.code ?? 2] ?? 500, (info?.reason ?? "unknown").toLowerCase(), status.message ?? "request failed", violations, retryS);
    }
}
const unauthorizedListeners = [];
export function onUnauthorized(listener) {
    unauthorizedListeners.push(listener);
}
async function errorOf(response) {
    let body = {};
    try {
        body = await response.json();
    }
    catch {
    }
    const retryHeader = response.headers.get("Retry-After");
    let error;
    if (body.status) {
        error = ApiError.fromStatus(body.status, response.status);
    }
    else {
        error = new ApiError(response.status, body.error?.code ?? `http_${response.status}`, body.error?.message ?? `${response.status} ${response.statusText}`);
    }
    if (body.error?.code) {
        error = new ApiError(error.httpStatus, body.error.code, body.error.message ?? error.message, error.violations, error.retryAfterS ?? (retryHeader ? Number(retryHeader) : null));
    }
    if (error.httpStatus === 401)
        unauthorizedListeners.forEach((l) => l(error));
    return error;
}
export async function call(path, init = {}) {
    let response;
    try {
        response = await fetch(path, {
            ...init, headers: { ...keyHeaders(), ...init.headers },
        });
    }
    catch (err) {
        if (err instanceof DOMException && err.name === "AbortError")
            throw err;
        throw new ApiError(0, "network", "The server cannot be reached. Is it still running?");
    }
    if (!response.ok)
        throw await errorOf(response);
    return response;
}
export async function getJson(path, signal) {
    return (await call(path, { signal })).json();
}
export async function* postStream(path, body, signal) {
    const response = await call(path, {
        method: "POST", signal, body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
    });
    if (!response.body)
        throw new ApiError(0, "network", "The browser gave no response stream.");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
        for (;;) {
            const { done, value } = await reader.read();
            if (value)
                buffered += value;
            let newline;
            while ((newline = buffered.indexOf("\n")) >= 0) {
                const line = buffered.slice(0, newline).trim();
                buffered = buffered.slice(newline + 1);
                if (!line)
                    continue;
                const parsed = JSON.parse(line);
                if (parsed.error)
                    throw ApiError.fromStatus(parsed.error);
                if (parsed.result !== undefined)
                    yield parsed.result;
            }
            if (done)
                break;
        }
    }
    catch (err) {
        if (err instanceof TypeError) {
            throw new ApiError(0, "network", "The connection to the server broke during the request.");
        }
        throw err;
    }
    finally {
        reader.releaseLock();
    }
}
export async function imageUrl(filePath) {
    const response = await call(filePath);
    return URL.createObjectURL(await response.blob());
}
