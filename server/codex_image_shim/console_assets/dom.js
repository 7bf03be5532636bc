export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false)
            continue;
        if (typeof value === "function") {
            el.addEventListener(name.slice(2), value);
        }
        else if (value === true) {
            el.setAttribute(name, "");
        }
        else {
            el.setAttribute(name, String(value));
        }
    }
    append(el, ...children);
    return el;
}
export function append(parent, ...children) {
    for (const child of children) {
        if (child === null || child === undefined || child === false)
            continue;
        parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
}
export function byId(id) {
    const el = document.getElementById(id);
    if (!el)
        throw new Error(`index.html has no #${id}`);
    return el;
}
export function clear(el) {
    el.replaceChildren();
}
export function formatBytes(n) {
    if (n < 1024)
        return `${n} B`;
    if (n < 1024 * 1024)
        return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
export function formatMs(ms) {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
