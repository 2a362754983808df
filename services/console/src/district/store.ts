// The district screen's state: loaded once on sign-in, then kept current by the live case
// events (GET /api/v1/events). Each event marks its case; the marked cases' points and the
// board are re-read, coalesced, so a burst of events costs a few requests, not one each.
import { reactive, shallowRef, triggerRef } from "vue";
import { getJson } from "../common/api";
import { shanghaiDay, shanghaiMonth } from "../common/format";
import { type LinkState, openStream, type Stream } from "../common/sse";
import { coalesce, scheduleAt } from "../common/timing";
import type {
  CaseEvent,
  CasePoint,
  CaseSummary,
  Deadlines,
  ExceptionShares,
  ExtensionRequest,
  GeoJson,
  Hotspot,
  KpiReport,
  Me,
  PointTable,
  Queues,
  TrendDay,
  Unit,
} from "./types";

const TICKER_MAX = 200;
const AT_DISTRICT = ["triage", "returned", "escalated"];

export const state = reactive({
  me: null as Me | null,
  units: {} as Record<string, Unit>,
  territories: null as GeoJson | null,
  queues: null as Queues | null,
  deadlines: null as Deadlines | null,
  deadlinesAt: 0,
  pending: [] as CaseSummary[],
  extensions: [] as ExtensionRequest[],
  ticker: [] as CaseEvent[],
  today: null as KpiReport | null,
  month: null as KpiReport | null,
  /** this month's exception shares (退单, 延期, 缓办, 作废 granted over tasks dispatched) */
  exceptionShares: null as ExceptionShares | null,
  trend: [] as TrendDay[],
  hotspots: [] as Hotspot[],
  link: "connecting" as LinkState,
  selected: null as string | null,
  error: "",
});

/** Open cases by number; not deeply reactive (10,000 of them): `triggerRef` after changes. */
export const points = shallowRef(new Map<string, CasePoint>());

export function unitName(code: string | null | undefined): string {
  return code ? (state.units[code]?.name ?? code) : "—";
}

function toPoints(table: PointTable): CasePoint[] {
  return table.rows.map((row) => {
    const p: Record<string, unknown> = {};
    table.columns.forEach((c, i) => (p[c] = row[i]));
    return p as unknown as CasePoint;
  });
}

const OFF_MAP = new Set(["closed", "withdrawn", "not_ours", "rejected", "merged"]);

async function loadPoints(): Promise<void> {
  const table = await getJson<PointTable>("/api/v1/case-points");
  points.value = new Map(toPoints(table).map((p) => [p.case_no, p]));
}

const dirty = new Set<string>();
/** Redrawing 10,000 points costs a frame or more: a burst of events redraws once a second. */
const POINTS_SPACING_MS = 1000;
const refreshPoints = coalesce(async () => {
  const cases = [...dirty].slice(0, 200);
  cases.forEach((c) => dirty.delete(c));
  if (dirty.size) refreshPoints();
  const table = await getJson<PointTable>(`/api/v1/case-points?cases=${cases.join(",")}`);
  const map = points.value;
  for (const p of toPoints(table)) {
    if (OFF_MAP.has(p.state)) map.delete(p.case_no);
    else map.set(p.case_no, p);
  }
  triggerRef(points);
}, 100, POINTS_SPACING_MS);

async function loadQueues(): Promise<void> {
  state.queues = await getJson<Queues>("/api/v1/queues");
}

/** The district's own pending decisions: cases waiting in its states, and the units'
 * extension requests (the case stays in its state while one waits). */
async function loadPending(): Promise<void> {
  const [extensions, pages] = await Promise.all([
    getJson<{ items: ExtensionRequest[] }>("/api/v1/extension-requests?limit=100"),
    Promise.all(
      AT_DISTRICT.map((s) => getJson<{ items: CaseSummary[] }>(`/api/v1/cases?state=${s}&limit=50`)),
    ),
  ]);
  state.pending = pages.flatMap((p) => p.items);
  state.extensions = extensions.items;
}

let nextDeadlineLoad = (): void => undefined;
async function loadDeadlines(): Promise<void> {
  const found = await getJson<Deadlines>("/api/v1/deadlines?limit=500");
  state.deadlines = found;
  state.deadlinesAt = Date.now();
  nextDeadlineLoad(); // cancel the previous schedule
  nextDeadlineLoad = scheduleAt(() => void loadDeadlines(), found.next_change_at);
}

async function loadKpis(): Promise<void> {
  const today = shanghaiDay();
  const [from, to] = shanghaiMonth();
  const [day, month, trend, exceptionShares] = await Promise.all([
    getJson<KpiReport>(`/api/v1/kpis?by=source&from=${today}&to=${shanghaiDay(1)}`),
    getJson<KpiReport>(`/api/v1/kpis?by=source&from=${from}&to=${to}`),
    getJson<{ days: TrendDay[] }>("/api/v1/trend?days=14"),
    getJson<ExceptionShares>(`/api/v1/kpis/exceptions?from=${from}&to=${to}`),
  ]);
  Object.assign(state, { today: day, month, trend: trend.days, exceptionShares });
}

const refreshBoard = coalesce(() => Promise.all([loadQueues(), loadPending()]).then(), 300);
const refreshDeadlines = coalesce(loadDeadlines, 1500);
const refreshKpis = coalesce(loadKpis, 10_000);

/** Open hotspots (态势感知): found by the district every few seconds as reports arrive. */
async function loadHotspots(): Promise<void> {
  state.hotspots = (await getJson<{ items: Hotspot[] }>("/api/v1/hotspots?state=open")).items;
}
const refreshHotspots = coalesce(loadHotspots, 5000);

function onCaseEvent(ev: CaseEvent): void {
  state.ticker.unshift(ev);
  if (state.ticker.length > TICKER_MAX) state.ticker.length = TICKER_MAX;
  dirty.add(ev.case_no);
  refreshPoints();
  refreshBoard();
  refreshDeadlines();
  refreshKpis();
  refreshHotspots();
  if (state.selected === ev.case_no) selectedChanged.forEach((f) => f());
}

/** Listeners told when the case in the drawer changed (it reloads itself). */
export const selectedChanged: (() => void)[] = [];

async function loadEverything(): Promise<void> {
  await Promise.all([
    loadPoints(),
    loadQueues(),
    loadPending(),
    loadDeadlines(),
    loadKpis(),
    loadHotspots(),
  ]);
}

let stream: Stream | null = null;

export async function start(): Promise<void> {
  state.error = "";
  const [me, units, territories] = await Promise.all([
    getJson<Me>("/api/v1/me"),
    getJson<{ units: Unit[] }>("/api/v1/units"),
    getJson<GeoJson>("/api/v1/territories"),
  ]);
  state.me = me;
  state.units = Object.fromEntries(units.units.map((u) => [u.unit_code, u]));
  state.territories = territories;
  stream = openStream("/api/v1/events", {
    event(type, data) {
      if (type === "case-event") onCaseEvent(JSON.parse(data) as CaseEvent);
      else if (type === "reset") void loadEverything();
    },
    // a fresh stream (not resumed) may have missed events: read everything again
    opened(resumed) {
      if (!resumed) void loadEverything();
    },
    state(link) {
      state.link = link;
    },
  });
}

export function stop(): void {
  stream?.close();
  stream = null;
}
