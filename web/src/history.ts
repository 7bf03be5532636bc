// The History tab: stored images, newest first, a page at a time, searched by
// prompt text, from ListImages (GET /v1/images). A server without the history
// API answers 404 there; then the gallery shows the images made in this tab.

import { ApiError, getJson } from "./api.js";
import { append, byId, clear } from "./dom.js";
import { imageCard } from "./item.js";
import { describe } from "./messages.js";
import type { ImageRecord, ImagesPage } from "./types.js";

const PAGE_SIZE = 12;

export class HistoryView {
  private readonly form = byId<HTMLFormElement>("history-form");
  private readonly search = byId<HTMLInputElement>("history-search");
  private readonly grid = byId("gallery");
  private readonly message = byId("history-message");
  private readonly newer = byId<HTMLButtonElement>("history-newer");
  private readonly older = byId<HTMLButtonElement>("history-older");
  private readonly pageLabel = byId("history-page");
  // Tokens of the pages seen so far: tokens[i] opens page i ("" the first).
  private tokens: string[] = [""];
  private page = 0;
  private nextToken = "";
  private serverHistory = true;
  private readonly local: ImageRecord[] = [];

  constructor(private readonly authRequired: () => boolean) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.tokens = [""];
      this.page = 0;
      void this.load();
    });
    this.newer.addEventListener("click", () => {
      this.page = Math.max(0, this.page - 1);
      void this.load();
    });
    this.older.addEventListener("click", () => {
      if (!this.nextToken) return;
      this.tokens[this.page + 1] = this.nextToken;
      this.page += 1;
      void this.load();
    });
  }

  /** Images generated in this tab, for a server without ListImages. */
  remember(image: ImageRecord): void {
    this.local.unshift(image);
  }

  async load(): Promise<void> {
    this.message.textContent = "Loading…";
    this.message.className = "message";
    try {
      const { images, next_page_token } = this.serverHistory ? await this.fetchPage() : this.localPage();
      this.nextToken = next_page_token;
      this.render(images);
    } catch (err) {
      if (err instanceof ApiError && err.code === "not_found" && this.serverHistory && !this.local.length) {
        this.serverHistory = false;  // no history API on this server
        return this.load();
      }
      this.message.textContent = describe(err);
      this.message.className = "message error";
    }
  }

  private async fetchPage(): Promise<ImagesPage> {
    const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
    if (this.tokens[this.page]) query.set("page_token", this.tokens[this.page]);
    const text = this.search.value.trim();
    if (text) query.set("prompt_contains", text);
    const page = await getJson<Partial<ImagesPage>>(`/v1/images?${query}`);
    return { images: page.images ?? [], next_page_token: page.next_page_token ?? "" };
  }

  private localPage(): ImagesPage {
    const text = this.search.value.trim().toLowerCase();
    const matching = this.local.filter((i) => !text || i.prompt.toLowerCase().includes(text));
    const start = this.page * PAGE_SIZE;
    return { images: matching.slice(start, start + PAGE_SIZE),
      next_page_token: start + PAGE_SIZE < matching.length ? String(this.page + 1) : "" };
  }

  private render(images: ImageRecord[]): void {
    clear(this.grid);
    for (const image of images) {
      append(this.grid, imageCard(image, {
        authRequired: this.authRequired,
        onDeleted: (gone) => {
          const i = this.local.findIndex((l) => l.id === gone.id);
          if (i >= 0) this.local.splice(i, 1);
          this.message.textContent = `Deleted ${gone.id}.`;
        },
      }));
    }
    const source = this.serverHistory ? "" : " (this server keeps no history: images made in this tab)";
    this.message.textContent = images.length ? source.trim() : `No images${this.search.value.trim()
      ? " match the search" : " yet"}.${source}`;
    this.pageLabel.textContent = `Page ${this.page + 1}`;
    this.newer.disabled = this.page === 0;
    this.older.disabled = !this.nextToken;
  }
}
