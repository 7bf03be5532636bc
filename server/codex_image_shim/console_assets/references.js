import { append, clear, formatBytes, h } from "./dom.js";
function readDataUrl(file) {
    return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(String(reader.result));
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(file);
    });
}
function pixelSize(url) {
    return new Promise((resolve) => {
        const img = new Image();
        img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
        img.onerror = () => resolve({ width: 0, height: 0 });
        img.src = url;
    });
}
export class References {
    list;
    status;
    items = [];
    errors = new Map();
    constructor(list, status) {
        this.list = list;
        this.status = status;
    }
    attach(input, zone, pasteTarget) {
        input.addEventListener("change", () => {
            void this.add(Array.from(input.files ?? []));
            input.value = "";
        });
        zone.addEventListener("dragover", (e) => {
            e.preventDefault();
            zone.classList.add("dragging");
        });
        zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
        zone.addEventListener("drop", (e) => {
            e.preventDefault();
            zone.classList.remove("dragging");
            void this.add(Array.from(e.dataTransfer?.files ?? []));
        });
        pasteTarget.addEventListener("paste", (e) => {
            const files = Array.from(e.clipboardData?.files ?? []).filter((f) => f.type.startsWith("image/"));
            if (files.length) {
                e.preventDefault();
                void this.add(files);
            }
        });
    }
    async add(files) {
        for (const file of files) {
            const dataUrl = await readDataUrl(file);
            const { width, height } = await pixelSize(dataUrl);
            this.items.push({ name: file.name || "pasted image", mimeType: file.type, dataUrl, width, height,
                bytes: file.size });
        }
        this.errors.clear();
        this.render();
    }
    remove(index) {
        this.items.splice(index, 1);
        this.errors.clear();
        this.render();
    }
    showErrors(errors) {
        this.errors = errors;
        this.render();
    }
    payload() {
        return this.items.map((r) => ({ image: r.dataUrl, label: r.name, width: r.width, height: r.height }));
    }
    render() {
        clear(this.list);
        this.items.forEach((r, i) => {
            const error = this.errors.get(i);
            const size = r.width ? `${r.width}×${r.height}` : "size unknown";
            append(this.list, h("li", { class: error ? "reference invalid" : "reference", "data-index": i }, r.width ? h("img", { src: r.dataUrl, alt: `Reference ${i + 1}: ${r.name}` })
                : h("span", { class: "ref-missing", "aria-hidden": "true" }, "?"), h("span", { class: "ref-name", title: r.name }, r.name), h("span", { class: "ref-size" }, `${size} · ${formatBytes(r.bytes)}`), error ? h("span", { class: "field-error", role: "alert" }, error) : null, h("button", { type: "button", class: "link", "aria-label": `Remove reference ${i + 1}`,
                onclick: () => this.remove(i) }, "Remove")));
        });
        this.status.textContent = this.items.length
            ? `${this.items.length} reference${this.items.length > 1 ? "s" : ""}` : "";
    }
}
