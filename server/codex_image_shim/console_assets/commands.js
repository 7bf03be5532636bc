const KEY_VAR = "CODEX_IMAGE_SERVER_API_KEY";
const GRPC_PORT = 17342;
function shellQuote(text) {
    return `'${text.replace(/'/g, `'\\''`)}'`;
}
function requestBody(image) {
    const body = { prompt: image.prompt, count: 1 };
    if (image.requested_size)
        body.size = image.requested_size;
    if (image.aspect)
        body.aspect = image.aspect;
    if (image.quality)
        body.quality = image.quality;
    if (image.output_format)
        body.output_format = image.output_format;
    return body;
}
export function curlCommand(image, authRequired) {
    const lines = [`curl -sS ${shellQuote(`${location.origin}/v1/images/generate`)}`,
        `-H 'Content-Type: application/json'`];
    if (authRequired)
        lines.push(`-H "X-API-Key: $${KEY_VAR}"`);
    lines.push(`-d ${shellQuote(JSON.stringify(requestBody(image)))}`);
    return lines.join(" \\\n  ");
}
export function grpcurlCommand(image, authRequired) {
    const lines = ["grpcurl -plaintext"];
    if (authRequired)
        lines.push(`-H "x-api-key: $${KEY_VAR}"`);
    lines.push(`-d ${shellQuote(JSON.stringify(requestBody(image)))}`);
    lines.push(`${location.hostname}:${GRPC_PORT} codeximage.v1.ImageService/Generate`);
    return lines.join(" \\\n  ");
}
export async function copyText(text) {
    try {
        await navigator.clipboard.writeText(text);
        return true;
    }
    catch {
        return false;
    }
}
