// The shapes the district's API answers with (services/district/*_api.py).
export interface Me {
  role: string;
  unit_code: string | null;
  name: string;
  token_id: string;
}

export interface Unit {
  unit_code: string;
  name: string;
  tier: string;
}

export interface CasePoint {
  case_no: string;
  lon: number | null;
  lat: number | null;
  urgency: string;
  state: string;
  street_code: string | null;
  unit_code: string | null;
  resolve_by_ms: number | null;
  running: boolean;
  supervised: boolean;
}

export interface PointTable {
  as_of: string;
  columns: string[];
  rows: unknown[][];
}

export interface Queues {
  open: { unit_code: string; state: string; n: number }[];
  /** per unit and stage; the district's own stages under `<district>-CENTER` */
  overdue: { unit_code: string; stage: string; n: number }[];
  /** the decisions the district owes (triage, escalation, extension), nearest due first */
  waiting: WaitingItem[];
  waiting_for_triage: number;
  /** returns and co-units to replace waiting for the district, oldest first */
  decisions: PendingDecision[];
  as_of: string;
}

export interface WaitingItem {
  case_no: string;
  task_id: string | null;
  unit_code: string | null;
  stage: "triage" | "escalation_decision" | "return_decision" | "extension_decision";
  title: string;
  urgency: string;
  since: string;
  due_at: string;
  overdue: boolean;
}

/** A return (退单) waiting for the district's decision (`POST .../return-decision`): a lead
 * unit's (`return`) or a co-unit's (`replace_co_unit`: replace it, dismiss it or refuse). */
export interface PendingDecision {
  kind: "return" | "replace_co_unit";
  case_no: string;
  task_id: string;
  unit_code: string;
  return_reason: string | null;
  since: string | null;
}

/** Each exception path's share of a period (GET /api/v1/kpis/exceptions). */
export interface ExceptionShares {
  dispatched: number;
  kinds: { kind: string; granted: number; refused: number; share: number | null }[];
}

export interface DueTask {
  task_id: string;
  case_no: string;
  unit_code: string;
  role: string;
  stage: string;
  urgency: string;
  title: string;
  supervised: boolean;
  due_at: string;
  remaining_s: number;
  natural: boolean;
  ticking: boolean;
}

export interface Deadlines {
  as_of: string;
  overdue_total: number;
  items: DueTask[];
  next_change_at: string | null;
}

export interface CaseEvent {
  event_id: string;
  case_no: string;
  seq: number;
  type: string;
  at: string;
  actor: string;
  from_state: string | null;
  to_state: string;
  unit_code: string | null;
}

export interface Kpi {
  key: string;
  name: string;
  numerator: number;
  denominator: number;
  value: number | null;
}

export interface KpiFigures {
  counts: Record<string, number>;
  kpis: Record<string, Kpi>;
}

export interface KpiReport {
  total: KpiFigures;
}

export interface TrendDay {
  day: string;
  opened: number;
  closed: number;
  closed_on_time: number;
}

export interface ExtensionRequest {
  case_no: string;
  task_id: string;
  unit_code: string | null;
  requested_at: string;
  requested_until: string | null;
  note: string | null;
  title: string;
  urgency: string;
  resolve_by: string;
  /** when the district must have decided (the policy's extension_decision) */
  decide_by: string | null;
  overdue: boolean;
}

export interface CaseSummary {
  case_no: string;
  state: string;
  title: string;
  urgency: string;
  opened_at: string;
  unit_code: string | null;
}

export interface CaseDetail {
  case_no: string;
  state: string;
  title: string;
  description: string;
  address: string;
  category_name: string;
  urgency: string;
  source: string;
  source_ref: string;
  supervised: boolean;
  caller_name: string | null;
  caller_phone_masked: string | null;
  opened_at: string;
  resolve_by: string | null;
  tasks: {
    task_id: string;
    unit_code: string;
    role: string;
    state: string;
    accept_by: string;
    first_contact_by: string;
    resolve_by: string;
  }[];
  timeline: {
    seq: number;
    type: string;
    at: string;
    actor: string;
    to_state: string;
    unit_code: string | null;
    data: Record<string, unknown>;
  }[];
}

export type GeoJson = { type: string; features: { properties: Record<string, string> }[] };

/** An open hotspot (GET /api/v1/hotspots): a cluster, a street's surge, or a repeat place. */
export interface Hotspot {
  hotspot_id: string;
  kind: "cluster" | "surge" | "repeat";
  category_name: string;
  street_name: string | null;
  centroid: { lon: number; lat: number } | null;
  count: number;
  baseline: number;
  opened_at: string;
  case_nos: string[];
}
