const STORAGE = "codex-image-server.api-key";
export function getKey() {
    try {
        return sessionStorage.getItem(STORAGE) ?? "";
    }
    catch {
        return "";
    }
}
export function setKey(key) {
    try {
        if (key)
            sessionStorage.setItem(STORAGE, key);
        else
            sessionStorage.removeItem(STORAGE);
    }
    catch {
    }
}
export function keyHeaders() {
    const key = getKey();
    return key ? { "X-API-Key": key } : {};
}
