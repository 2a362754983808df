// zh-CN words for the API's vocabulary, and times as Shanghai reads them.
export const ZONE = "Asia/Shanghai";

export const STATE: Record<string, string> = {
  received: "已接收",
  triage: "待分拨",
  dispatched: "待签收",
  accepted: "已签收",
  in_progress: "处置中",
  resolved: "已办结",
  closed: "已结案",
  returned: "已退回",
  escalated: "已上报",
  reopened: "重办",
  withdrawn: "已撤回",
  not_ours: "非本区",
  parked: "挂起",
  rejected: "不予受理",
  merged: "已并案",
  unassigned: "未派遣",
};

export const URGENCY: Record<string, string> = { normal: "一般", urgent: "紧急", critical: "特急" };

export const STAGE: Record<string, string> = {
  accept: "签收",
  first_contact: "先行联系",
  resolve: "办结",
  triage: "分拨",
  escalation_decision: "上报决策",
  return_decision: "退单审核",
  extension_decision: "延期审批",
};

/** A unit's return reason (退单理由), as the street desk offers them. */
export const RETURN_REASON: Record<string, string> = {
  not_our_territory: "非本辖区",
  not_our_duty: "非本单位职责",
  duplicate: "重复件",
  invalid: "无效诉求",
  other: "其他",
};

/** Why a unit's task was withdrawn or handed back (`withdrawn` / `updated` reasons). */
export const TASK_REASON: Record<string, string> = {
  returned: "退单已收到",
  escalated: "上报已收到",
  lead_resolved: "主办已办结，协办撤回",
  return_refused: "退单未批准",
};

/** What waits for the district's decision (`decisions` of the queues). */
export const DECISION_KIND: Record<string, string> = {
  return: "退单",
  replace_co_unit: "协办退单",
};

/** The kinds of the exception ledger (异常流程). */
export const EXCEPTION_KIND: Record<string, string> = {
  return: "退单",
  extension: "延期",
  parking: "缓办",
  cancellation: "作废",
};

export const EVENT: Record<string, string> = {
  opened: "立案",
  dispatched: "派遣",
  to_triage: "转人工分拨",
  not_ours: "非本区",
  self_handled: "自办",
  accepted: "签收",
  contacted: "先行联系",
  progressed: "进展",
  resolved: "办结",
  returned: "退回",
  escalated: "上报",
  extension_requested: "申请延期",
  closed: "结案",
  reopened: "重办",
  withdrawn: "撤回",
  urged: "催办",
  supplemented: "补充",
  supplement_not_applied: "补充（已办结，仅记录）",
  rerouted: "地点变更改派",
  followed_up: "回访",
  joint_dispatched: "联合派遣",
  co_reported: "协办反馈",
  co_reported_late: "协办逾时反馈（已不影响案件）",
  co_dispatched: "协办派遣",
  co_units_added: "增派协办",
  return_approved: "退单批准",
  return_refused: "退单未批准",
  co_return_approved: "协办退单批准",
  co_return_refused: "协办退单未批准",
  reclassified: "改类",
  extension_approved: "延期批准",
  extension_refused: "延期驳回",
  supervised: "督办",
  deadline_warning: "临期预警",
  district_deadline_warning: "区级决策临期",
  district_deadline_overdue: "区级决策超时",
  parked: "挂起",
  unparked: "解除挂起",
  verified: "核查通过",
  verify_failed: "核查未通过",
  rejected: "不予受理",
  merged: "并案",
  merged_report: "并入报告",
  split: "拆案",
  phone_revealed: "查看号码",
};

export const ROLE: Record<string, string> = {
  district_operator: "区值班员",
  district_supervisor: "区值班长",
  auditor: "审计",
  street_operator: "街镇值班员",
  department_operator: "部门值班员",
};

export function word(table: Record<string, string>, key: string | null | undefined): string {
  return key ? (table[key] ?? key) : "—";
}

const clock = new Intl.DateTimeFormat("zh-CN", {
  timeZone: ZONE,
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});
const dateTime = new Intl.DateTimeFormat("zh-CN", {
  timeZone: ZONE,
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const isoDay = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE });

export function timeOf(at: string | number | Date): string {
  return clock.format(new Date(at));
}

export function dateTimeOf(at: string | number | Date | null | undefined): string {
  return at ? dateTime.format(new Date(at)) : "—";
}

/** YYYY-MM-DD of the Shanghai day `offsetDays` from today's. */
export function shanghaiDay(offsetDays = 0, from: Date = new Date()): string {
  return isoDay.format(new Date(from.getTime() + offsetDays * 86_400_000));
}

/** `YYYY-MM-01` of this Shanghai month and of the next. */
export function shanghaiMonth(): [string, string] {
  const [y, m] = shanghaiDay().split("-").map(Number);
  const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, "0")}`;
  return [`${y}-${String(m).padStart(2, "0")}-01`, `${next}-01`];
}

/** `剩 3时05分` or `超 1天2时`: time left (or overdue) in seconds, for a countdown. */
export function countdownText(seconds: number): string {
  const late = seconds < 0;
  let s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const text =
    d > 0 ? `${d}天${h}时` : h > 0 ? `${h}时${String(m).padStart(2, "0")}分` : `${m}分${sec}秒`;
  return `${late ? "超" : "剩"} ${text}`;
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}
