// The street desk's state: the unit's active tasks and figures, kept current by the desk's
// notices (GET /api/v1/desk/events): each notice re-reads its one task.
import { reactive } from "vue";
import { getJson } from "../common/api";
import { type LinkState, openStream, type Stream } from "../common/sse";
import { coalesce, scheduleAt } from "../common/timing";

export interface Task {
  task_id: string;
  case_no: string;
  unit_code: string;
  kind: string;
  role: string;
  state: string;
  deadlines: { accept_by: string; first_contact_by: string | null; resolve_by: string };
  snapshot: {
    title: string;
    address: string;
    urgency: string;
    category_name: string;
    description: string;
    caller?: { name: string; phone_masked: string } | null;
  };
  dispatched_at: string;
  /** to the deadline owed next, counted as the district counts it (none: nothing owed) */
  countdown: Countdown | null;
  /** when this copy arrived (Date.now()): the countdown runs from there while it ticks */
  received_ms: number;
}

export interface Countdown {
  stage: string;
  due_at: string;
  remaining_s: number;
  natural: boolean;
  ticking: boolean;
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
  if (t.state === "accepted" && t.deadlines.first_contact_by)
    return { stage: "first_contact", at: t.deadlines.first_contact_by };
  return { stage: "resolve", at: t.deadlines.resolve_by };
}

/** The seconds left on a task's countdown now (it runs only while its time counts). */
export function secondsLeft(t: Task, now: number): number {
  const c = t.countdown;
  if (!c) return (new Date(nextDue(t).at).getTime() - now) / 1000;
  return c.ticking ? c.remaining_s - (now - t.received_ms) / 1000 : c.remaining_s;
}

interface TaskPage {
  items: Task[];
  next: string | null;
  next_change_at: string | null;
}

function received(t: Task): Task {
  t.received_ms = Date.now();
  return t;
}

async function loadState(state: string): Promise<[Task[], string | null]> {
  const out: Task[] = [];
  let after: string | null = null;
  let change: string | null = null;
  for (let page = 0; page < PAGES_MAX; page++) {
    const query: string = `state=${state}&limit=500${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const found: TaskPage = await getJson(`/api/v1/tasks?${query}`);
    out.push(...found.items.map(received));
    change = found.next_change_at;
    after = found.next;
    if (!after) break;
  }
  return [out, change];
}

// office time starts or stops: the countdowns are read again then (no polling in between)
let nextTaskLoad = (): void => undefined;
async function loadTasks(): Promise<void> {
  const lists = await Promise.all(ACTIVE.map(loadState));
  desk.tasks = new Map(lists.flatMap(([tasks]) => tasks).map((t) => [t.task_id, t]));
  nextTaskLoad();
  nextTaskLoad = scheduleAt(() => void loadTasks(), lists[0][1]);
}

async function loadFigures(): Promise<void> {
  desk.figures = (await getJson<{ units: Figures[] }>("/api/v1/desk/summary")).units;
}

const refreshFigures = coalesce(loadFigures, 500);

async function reloadTask(taskId: string): Promise<void> {
  const t = received(await getJson<Task>(`/api/v1/tasks/${encodeURIComponent(taskId)}`));
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
  nextTaskLoad();
}
