// The street desk's state: the unit's active tasks and figures, kept current by the desk's
// notices (GET /api/v1/desk/events): each notice re-reads its one task.
import { reactive } from "vue";
import { getJson } from "../common/api";
import { type LinkState, openStream, type Stream } from "../common/sse";
import { coalesce } from "../common/timing";

export interface Task {
  task_id: string;
  case_no: string;
  unit_code: string;
  kind: string;
  role: string;
  state: string;
  deadlines: { accept_by: string; first_contact_by: string; resolve_by: string };
  snapshot: {
    title: string;
    address: string;
    urgency: string;
    category_name: string;
    description: string;
    caller?: { name: string; phone_masked: string } | null;
  };
  dispatched_at: string;
}

export interface Figures {
  unit_code: string;
  name: string;
  [key: string]: number | string;
}

export interface Me {
  role: string;
  unit_code: string | null;
  name: string;
}

export const ACTIVE = ["open", "accepted", "contacted"];
const PAGES_MAX = 20;

export const desk = reactive({
  me: null as Me | null,
  tasks: new Map<string, Task>(),
  figures: [] as Figures[],
  link: "connecting" as LinkState,
  selected: null as string | null,
});

/** The deadline the task's holder must meet next, and for which stage. */
export function nextDue(t: Task): { stage: string; at: string } {
  if (t.state === "open") return { stage: "accept", at: t.deadlines.accept_by };
  if (t.state === "accepted") return { stage: "first_contact", at: t.deadlines.first_contact_by };
  return { stage: "resolve", at: t.deadlines.resolve_by };
}

async function loadState(state: string): Promise<Task[]> {
  const out: Task[] = [];
  let after: string | null = null;
  for (let page = 0; page < PAGES_MAX; page++) {
    const query: string = `state=${state}&limit=500${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const found: { items: Task[]; next: string | null } = await getJson(`/api/v1/tasks?${query}`);
    out.push(...found.items);
    after = found.next;
    if (!after) break;
  }
  return out;
}

async function loadTasks(): Promise<void> {
  const lists = await Promise.all(ACTIVE.map(loadState));
  desk.tasks = new Map(lists.flat().map((t) => [t.task_id, t]));
}

async function loadFigures(): Promise<void> {
  desk.figures = (await getJson<{ units: Figures[] }>("/api/v1/desk/summary")).units;
}

const refreshFigures = coalesce(loadFigures, 500);

async function reloadTask(taskId: string): Promise<void> {
  const t = await getJson<Task>(`/api/v1/tasks/${encodeURIComponent(taskId)}`);
  if (ACTIVE.includes(t.state)) desk.tasks.set(t.task_id, t);
  else desk.tasks.delete(t.task_id);
}

let stream: Stream | null = null;

export async function start(): Promise<void> {
  desk.me = await getJson<Me>("/api/v1/me");
  stream = openStream("/api/v1/desk/events", {
    event(type, data) {
      if (type !== "task") return;
      void reloadTask((JSON.parse(data) as { task_id: string }).task_id);
      refreshFigures();
    },
    opened() {
      void Promise.all([loadTasks(), loadFigures()]); // nothing is replayed: read it all again
    },
    state(link) {
      desk.link = link;
    },
  });
}

export function stop(): void {
  stream?.close();
  stream = null;
}
