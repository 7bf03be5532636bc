// The API key: asked for only when the server says keys are required, kept
// in sessionStorage (this tab only, gone when it closes), never in the URL.

const STORAGE = "codex-image-server.api-key";

export function getKey(): string {
  try {
    return sessionStorage.getItem(STORAGE) ?? "";
  } catch {
    return "";  // storage disabled: the key lives as long as the page
  }
}

export function setKey(key: string): void {
  try {
    if (key) sessionStorage.setItem(STORAGE, key);
    else sessionStorage.removeItem(STORAGE);
  } catch {
    /* see getKey */
  }
}

/** Headers that carry the key, as the plugin sends it. */
export function keyHeaders(): Record<string, string> {
  const key = getKey();
  return key ? { "X-API-Key": key } : {};
}
