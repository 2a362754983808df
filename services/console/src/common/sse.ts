// Server-sent events read with fetch, so the bearer token goes in a header (EventSource cannot
// send one, and a token in the URL would end up in logs). Reconnects by itself with a growing
// pause and sends Last-Event-ID, so the server can replay what was missed.
import { authHeaders, expire } from "./api";

export type LinkState = "connecting" | "live" | "reconnecting";

export interface StreamHandlers {
  event(type: string, data: string): void;
  /** the stream (re)opened: `resumed` when the server was given the last event's id */
  opened?(resumed: boolean): void;
  state?(state: LinkState): void;
}

export interface Stream {
  close(): void;
}

const FIRST_PAUSE_MS = 500;
const MAX_PAUSE_MS = 15_000;

export function openStream(path: string, on: StreamHandlers): Stream {
  const abort = new AbortController();
  let lastId: string | null = null;

  async function connectOnce(): Promise<boolean> {
    const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(path, { headers, signal: abort.signal, cache: "no-store" });
    if (response.status === 401) {
      expire();
      return false;
    }
    if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
    on.state?.("live");
    on.opened?.(lastId !== null);
    await readEvents(response.body, (id, type, data) => {
      if (id) lastId = id;
      on.event(type, data);
    });
    return true;
  }

  async function run(): Promise<void> {
    let pause = FIRST_PAUSE_MS;
    on.state?.("connecting");
    while (!abort.signal.aborted) {
      try {
        if (!(await connectOnce())) return;
        pause = FIRST_PAUSE_MS; // it was up: the next drop retries quickly
      } catch {
        if (abort.signal.aborted) return;
      }
      on.state?.("reconnecting");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
    }
  }

  void run();
  return { close: () => abort.abort() };
}

type Dispatch = (id: string | null, type: string, data: string) => void;

/** Parse an event stream (the WHATWG format): fields until a blank line, then dispatch. */
async function readEvents(body: ReadableStream<Uint8Array>, dispatch: Dispatch): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | null = null;
  let type = "message";
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length) dispatch(id, type, data.join("\n"));
        type = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(text);
      else if (field === "event") type = text;
      else if (field === "id") id = text;
    }
  }
}
