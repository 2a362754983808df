"""Realistic upstream messages for the demo feed and tests: pure generation, no Kafka.

`FeedGenerator` reads the district's reference CSVs once and then produces plain dicts that
validate against the contracts: 12345 work orders, road-chief reports, 12345 follow-ups and the
feedback a unit sends about a task. The same seed and the same `now` values give the same output.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from services.district.routing.geo import wgs84_to_gcj02

SHANGHAI = timezone(timedelta(hours=8))
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "deploy" / "reference"

# minor category -> (weight, [(title, content with {road})]); phrased as citizens and operators do.
PHRASES: dict[str, tuple[int, list[tuple[str, str]]]] = {
    "私搭乱建": (
        3,
        [
            ("小区内违章搭建", "{road}某小区一楼住户在公共绿地上搭建彩钢板房，占用消防通道。"),
            ("屋顶加盖阳光房", "{road}某弄顶楼住户正在屋顶加盖阳光房，楼下担心漏水和安全。"),
        ],
    ),
    "暴露垃圾": (
        6,
        [
            ("垃圾堆放未清运", "{road}人行道边堆放多袋生活垃圾，已有两天无人清运，气味很大。"),
            ("垃圾桶满溢", "{road}沿街垃圾桶满溢，垃圾散落一地。"),
        ],
    ),
    "建筑垃圾渣土": (3, [("装修垃圾乱倒", "{road}某小区门口堆放大量装修垃圾，无覆盖，扬尘严重。")]),
    "道路不洁": (3, [("路面油污", "{road}路面有大片油污，行人容易滑倒，请安排清洗。")]),
    "绿地脏乱": (2, [("街心绿地脏乱", "{road}街心绿地内烟头、塑料袋较多，长期无人打扫。")]),
    "油烟污染": (
        8,
        [
            ("饭店油烟直排扰民", "{road}某饭店厨房油烟未经净化直接排放，楼上住户无法开窗。"),
            ("烧烤店油烟扰民", "{road}某烧烤店每晚油烟很大，烟味飘进居民家中。"),
        ],
    ),
    "噪声扰民": (
        9,
        [
            ("商铺音响噪声", "{road}某商铺门口音响整天大声播放促销广告，影响周边居民。"),
            ("夜间噪声扰民", "{road}某酒吧深夜音乐声很大，凌晨两点仍未停止，影响休息。"),
        ],
    ),
    "占道经营": (
        8,
        [
            (
                "流动摊贩占道",
                "{road}地铁站出口每天傍晚有流动摊贩占用人行道摆摊，行人只能走机动车道。",
            ),
            ("早餐摊占道", "{road}早餐摊点在人行道上摆放桌椅，通行困难。"),
        ],
    ),
    "跨门营业": (5, [("店铺跨门营业", "{road}沿街水果店货架摆出门外约两米，占用人行道。")]),
    "非机动车乱停放": (
        7,
        [
            (
                "共享单车堵塞人行道",
                "{road}地铁站出口共享单车乱停放，占满人行道，老人推车无法通行。",
            ),
        ],
    ),
    "违法停车": (
        6,
        [
            ("机动车占用人行道停放", "{road}多辆机动车长期停在人行道上，行人被迫绕行。"),
            ("车辆堵塞小区出入口", "{road}某小区出入口被违停车辆堵住，居民车辆无法进出。"),
        ],
    ),
    "施工扰民": (6, [("夜间施工噪声", "{road}某工地每晚十一点后仍在施工，噪声很大，影响休息。")]),
    "道路破损": (4, [("路面坑洼", "{road}非机动车道有多处坑洼，雨天积水，骑车容易摔倒。")]),
    "群租": (
        4,
        [
            ("疑似群租", "{road}某小区一套两居室住了十多人，进出频繁，存在消防隐患，怀疑群租。"),
        ],
    ),
    "住宅漏水": (4, [("楼上漏水", "{road}某小区楼上住户卫生间漏水，渗到楼下天花板，协商未果。")]),
    "物业纠纷": (3, [("物业不作为", "{road}某小区电梯故障一周，物业一直未安排维修。")]),
    "食品安全": (
        4,
        [
            ("超市售卖过期食品", "在{road}某超市购买的酸奶已过保质期两天。"),
            ("餐馆卫生问题", "{road}某餐馆后厨卫生很差，饭菜中吃出异物。"),
        ],
    ),
    "消费纠纷": (3, [("预付卡退费难", "{road}某健身房突然关门，会员预付卡余额无法退还。")]),
    "道路积水": (
        2,
        [
            ("道路大面积积水", "暴雨后{road}路口积水没过脚踝，车辆无法通行，下水道有倒灌。"),
        ],
    ),
    "树木倒伏": (2, [("大树倒伏压住道路", "{road}一棵行道树被大风刮倒，横在非机动车道上。")]),
    "消防隐患": (2, [("楼道堆物", "{road}某小区楼道内堆满杂物和电瓶车，电瓶车在楼道内充电。")]),
    "邻里纠纷": (
        2,
        [
            ("邻里纠纷", "{road}某小区邻居在公共走廊堆放鞋柜，多次沟通无果，双方发生争执。"),
        ],
    ),
    "井盖缺损": (
        3,
        [
            ("人行道井盖缺失", "{road}人行道上一处井盖缺失，仅用塑料桶遮挡，有行人跌落风险。"),
            ("井盖松动异响", "{road}机动车道上井盖松动，车辆经过时响声很大。"),
        ],
    ),
    "路灯不亮": (3, [("路灯不亮", "{road}一段路灯连续多晚不亮，夜间行走不安全。")]),
    "消火栓损坏": (1, [("消火栓漏水", "{road}路边消火栓漏水，地面长期湿滑。")]),
    "行道树缺株": (1, [("行道树缺株", "{road}人行道树穴空缺多处，建议补种。")]),
    "其他": (2, [("其他问题反映", "市民反映{road}附近的问题，具体情况需进一步核实。")]),
}
VARIANTS = {
    "油烟污染": ["餐饮油烟", "油烟扰民"],
    "噪声扰民": ["噪音扰民", "社会生活噪声"],
    "占道经营": ["无证摊贩", "马路摊点"],
    "非机动车乱停放": ["共享单车乱停"],
    "井盖缺损": ["窨井盖缺失"],
    "暴露垃圾": ["垃圾堆放"],
    "违法停车": ["乱停车"],
    "施工扰民": ["施工噪声"],
    "群租": ["群租房"],
    "道路积水": ["积水"],
}
#: a demo cluster is of a category at most this common (a common one's background in the demo,
#: at 2 orders/s, is already as dense as a cluster; 其他 also takes every unknown hint)
CLUSTER_MAX_WEIGHT = 4
UNKNOWN_HINTS = ["城市管理综合", "其他事项", "市容环境卫生", "民生诉求"]
# neighbouring districts: (code, name, place, wgs84 lon, lat)
ELSEWHERE = [
    ("310104", "徐汇区", "漕溪北路", 121.43676, 31.19478),
    ("310104", "徐汇区", "衡山路", 121.44520, 31.20750),
    ("310105", "长宁区", "长宁路", 121.41770, 31.21970),
    ("310101", "黄浦区", "福州路", 121.48310, 31.23420),
]
CHANNELS = (["phone", "web", "app", "wechat", "mailbox"], [60, 12, 15, 10, 3])
CHANNEL_LEAD = {
    "phone": "市民来电反映：",
    "web": "市民网上留言：",
    "app": "市民通过随申办反映：",
    "wechat": "市民通过微信公众号反映：",
    "mailbox": "市民来信反映：",
}
REQUEST_TYPES = (["complaint", "help", "consultation", "suggestion", "praise"], [45, 30, 12, 10, 3])
ASK = {
    "complaint": "要求相关部门尽快查处。",
    "help": "请求相关部门帮助处置。",
    "consultation": "市民咨询此事应由哪个部门处理、多久能解决。",
    "suggestion": "建议相关部门加强日常管理。",
    "praise": "此前反映后已有改善，市民表示感谢。",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["建国", "明", "洋", "伟", "静", "丽华", "志强", "秀英", "海燕", "国平", "文杰", "晓东"]
NOTES = {
    "accept": "已签收，安排人员核实。",
    "contact": "已电话联系市民，说明处置安排。",
    "progress": "已到现场查看，正在协调处置。",
    "return": "经核实该点位不在本单位辖区，申请退单。",
    "escalate": "涉及多个部门职责，本单位无法单独处置，申请区级协调。",
    "request_extension": "需协调产权单位，申请延期。",
    "resolve": "已处置完毕。",
}
COMMENTS = {
    "satisfied": ["问题已解决，处理很及时。", "工作人员态度很好。"],
    "basically_satisfied": ["基本解决了，希望后续加强巡查。", "处理比较慢，但结果还可以。"],
    "dissatisfied": ["问题仍然存在，没有实际解决。", "只打了电话，没有人到现场。"],
    "unreachable": ["回访电话多次无人接听。"],
}


def iso(at: datetime) -> str:
    """Shanghai time with its offset, to the second (naive values are taken as Shanghai time)."""
    at = at.replace(tzinfo=SHANGHAI) if at.tzinfo is None else at.astimezone(SHANGHAI)
    return at.isoformat(timespec="seconds")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class FeedGenerator:
    """Deterministic (per seed) generator of the messages the upstream parties send."""

    def __init__(
        self,
        seed: int,
        district_code: str = "310106",
        reference_dir: Path = REFERENCE_DIR,
        prefix: str | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.district_code = district_code
        self.prefix = prefix if prefix is not None else f"{seed % 1000:03d}"
        categories = _rows(reference_dir / "categories.csv")
        self.categories = [r for r in categories if r["minor"] in PHRASES]
        self.anchors: dict[str, list[tuple[float, float]]] = {}
        for row in _rows(reference_dir / "jingan_street_anchors_wgs84.csv"):
            point = (float(row["lon"]), float(row["lat"]))
            self.anchors.setdefault(row["unit_code"], []).append(point)
        self.departments = [
            r["unit_code"]
            for r in _rows(reference_dir / "jingan_departments.csv")
            if not r["unit_code"].endswith("-CENTER")
        ]
        # real roads in or beside each street's territory (the district's gazetteer)
        self.roads: dict[str, list[str]] = {}
        for row in _rows(reference_dir / "jingan_roads.csv"):
            self.roads.setdefault(row["unit_code"], []).append(row["road"])
        self.elsewhere = [e for e in ELSEWHERE if e[0] != district_code]
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def _pick(self, choices: tuple[list[str], list[int]]) -> str:
        return self.rng.choices(choices[0], choices[1])[0]

    def _name(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)

    def _category(self, only_majors: tuple[str, ...] = ()) -> dict[str, str]:
        pool = [c for c in self.categories if not only_majors or c["major"] in only_majors]
        return self.rng.choices(pool, [PHRASES[c["minor"]][0] for c in pool])[0]

    def _hint(self, minor: str) -> str | None:
        roll = self.rng.random()
        if roll < 0.04:
            return None
        if roll < 0.12:
            return self.rng.choice(UNKNOWN_HINTS)
        if roll < 0.27 and minor in VARIANTS:
            return self.rng.choice(VARIANTS[minor])
        return minor

    def _point(self, street: str) -> tuple[float, float]:
        """A WGS-84 point within 250 m of one of the street's anchors."""
        return self._jitter(*self.rng.choice(self.anchors[street]))

    def _jitter(self, lon: float, lat: float, radius_m: float = 250.0) -> tuple[float, float]:
        dist, bearing = radius_m * math.sqrt(self.rng.random()), self.rng.uniform(0, 2 * math.pi)
        dlat = dist * math.cos(bearing) / 111_320.0
        dlon = dist * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
        return lon + dlon, lat + dlat

    def _location(self, lon: float, lat: float, gcj_share: float) -> dict[str, Any]:
        if self.rng.random() < gcj_share:
            lon, lat = wgs84_to_gcj02(lon, lat)
            return {"lon": round(lon, 6), "lat": round(lat, 6), "crs": "gcj02"}
        return {"lon": round(lon, 6), "lat": round(lat, 6), "crs": "wgs84"}

    def _address(self, roads: list[str]) -> tuple[str, str]:
        """A road of the street and a free-text address on it."""
        road, other = self.rng.sample(roads, 2)
        form = self.rng.randrange(4)
        if form == 0:
            return road, f"{road}{self.rng.randrange(1, 1500)}号"
        if form == 1:
            return road, f"{road}{self.rng.randrange(1, 1200)}弄附近"
        return road, (f"{road}与{other}路口" if form == 2 else f"{road}某小区")

    def _urgency(self, category: dict[str, str]) -> str:
        if "urgent by default" in category["notes"]:
            return self.rng.choices(["normal", "urgent", "critical"], [20, 60, 20])[0]
        return self.rng.choices(["normal", "urgent", "critical"], [90, 8, 2])[0]

    def _caller(self) -> dict[str, Any]:
        anonymous = self.rng.random() < 0.1
        name = (
            "匿名"
            if anonymous
            else self.rng.choice(SURNAMES)
            + self.rng.choice(["先生", "女士", "阿姨", "老师", "师傅"])
        )
        phone = f"138{self.rng.randrange(10**8):08d}"
        return {
            "name": name,
            "phone": phone,
            "anonymous": anonymous,
            "callback": self.rng.random() < 0.9,
        }

    def work_order(self, now: datetime) -> dict[str, Any]:
        """A 12345 `dispatch` order (revision 1) sent at `now`."""
        n = self._next()
        order_no = f"HL{now.astimezone(SHANGHAI):%Y%m%d}{self.prefix}{n:05d}"
        category = self._category()
        title, content = self.rng.choice(PHRASES[category["minor"]][1])
        channel, request_type = self._pick(CHANNELS), self._pick(REQUEST_TYPES)
        street = self.rng.choice(sorted(self.anchors))
        roads = self.roads.get(street, ["大统路", "共和新路"])
        district_code, lon, lat = self.district_code, *self._point(street)
        road, address = self._address(roads)
        address = "静安区" + address
        if self.elsewhere and self.rng.random() < 0.03:
            district_code, district_name, place, lon, lat = self.rng.choice(self.elsewhere)
            lon, lat = self._jitter(lon, lat)
            road, address = place, f"{district_name}{place}{self.rng.randrange(1, 900)}号"
        order: dict[str, Any] = {
            "schema": "hotline12345.workorder/v1",
            "order_no": order_no,
            "action": "dispatch",
            "revision": 1,
            "sent_at": iso(now),
            "received_at": iso(now - timedelta(seconds=self.rng.randrange(60, 900))),
            "channel": channel,
            "request_type": request_type,
            "urgency": self._urgency(category),
            "title": title,
            "content": CHANNEL_LEAD[channel] + content.format(road=road) + ASK[request_type],
            "address": address,
            "district_code": district_code,
            "caller": self._caller(),
            "attachments": [],
        }
        if (hint := self._hint(category["minor"])) is not None:
            order["category_hint"] = hint
        if self.rng.random() >= 0.10:
            order["location"] = self._location(lon, lat, gcj_share=0.45)
        if self.rng.random() < 0.1:
            order["due_at"] = iso(now + timedelta(days=self.rng.randrange(1, 6)))
        if channel in ("app", "wechat") and self.rng.random() < 0.5:
            url = f"https://img.example.invalid/12345/{order_no}/1.jpg"
            order["attachments"] = [{"url": url, "kind": "image"}]
        return order

    def cluster(
        self, now: datetime, count: int = 30, radius_m: float = 60.0
    ) -> list[dict[str, Any]]:
        """`count` 12345 orders about one problem at one spot (a bar's noise, a blocked
        pavement): one of the less common categories, within `radius_m` of a point near a
        street anchor, so that the district's hotspot detection sees a cluster."""
        rare = [
            c
            for c in self.categories
            if PHRASES[c["minor"]][0] <= CLUSTER_MAX_WEIGHT and c["minor"] != "其他"
        ]
        category = self.rng.choice(rare)
        street = self.rng.choice(sorted(self.anchors))
        centre = self._point(street)
        road, address = self._address(self.roads.get(street, ["大统路", "共和新路"]))
        title, content = self.rng.choice(PHRASES[category["minor"]][1])
        orders = []
        for _ in range(count):
            order = self.work_order(now)
            lon, lat = self._jitter(*centre, radius_m)
            order.update(
                district_code=self.district_code,
                address="静安区" + address,
                category_hint=category["minor"],
                title=title,
                content=CHANNEL_LEAD[order["channel"]] + content.format(road=road),
                location=self._location(lon, lat, gcj_share=0.45),
            )
            orders.append(order)
        return orders

    def road_chief_report(self, now: datetime) -> dict[str, Any]:
        """A road-chief patrol report; about one in five was handled on the spot."""
        n = self._next()
        street = self.rng.choice(sorted(self.anchors))
        roads = self.roads.get(street, ["大统路", "共和新路", "天目西路"])
        road, a, b = self.rng.sample(roads, 3)
        category = self._category(("市容环境", "街面秩序", "施工管理", "公用设施", "园林绿化"))
        level = 2 if self.rng.random() < 0.8 else 1
        unit = street if level == 2 else self.rng.choice(self.departments or [street])
        report_id = f"RC-{street}-{now.astimezone(SHANGHAI):%Y%m%d}-{self.prefix}{n:05d}"
        description = self.rng.choice(PHRASES[category["minor"]][1])[1].format(road=road)
        on_site = self.rng.random() < 0.2
        photos = [
            f"https://img.example.invalid/roadchief/{report_id}/{i}.jpg"
            for i in range(1, self.rng.randrange(2, 4))
        ]
        return {
            "schema": "roadchief.report/v1",
            "report_id": report_id,
            "reported_at": iso(now - timedelta(seconds=self.rng.randrange(0, 300))),
            "road_chief": {
                "id": f"RC-{self.rng.randrange(1, 600):04d}",
                "name": self._name(),
                "level": level,
                "unit_code": unit,
            },
            "road": road,
            "segment": f"{a}—{b}",
            "category_hint": self._hint(category["minor"]),
            "description": description + ("已现场处置完毕。" if on_site else ""),
            "location": self._location(*self._point(street), gcj_share=0.2),
            "photos": photos,
            "handled_on_site": on_site,
            "urgency": "normal" if self.rng.random() < 0.9 else "urgent",
        }

    def followup(
        self, order_no: str, now: datetime, satisfied_ratio: float = 0.85
    ) -> dict[str, Any]:
        """The 12345 follow-up (回访) of `order_no`, visited at `now`."""
        if self.rng.random() < satisfied_ratio:
            rating = "satisfied" if self.rng.random() < 0.7 else "basically_satisfied"
        else:
            rating = "dissatisfied" if self.rng.random() < 0.8 else "unreachable"
        return {
            "schema": "hotline12345.feedback/v1",
            "order_no": order_no,
            "visited_at": iso(now),
            "resolved": rating in ("satisfied", "basically_satisfied"),
            "satisfaction": rating,
            "comment": self.rng.choice(COMMENTS[rating]),
        }

    def unit_feedback(
        self, task: dict[str, Any], action: str, now: datetime, reason: str = "not_our_territory"
    ) -> dict[str, Any]:
        """What the unit holding `task` (a `cityops.task/v1` dict) reports: `action` at `now`."""
        unit = task["unit_code"]
        feedback: dict[str, Any] = {
            "schema": "cityops.task-feedback/v1",
            "feedback_id": f"FB-{self.prefix}-{self._next():07d}",
            "task_id": task["task_id"],
            "case_no": task["case_no"],
            "unit_code": unit,
            "actor": {"id": f"{unit}-op{self.rng.randrange(1, 20):02d}", "name": self._name()},
            "action": action,
            "at": iso(now),
            "note": NOTES.get(action, ""),
        }
        if action == "return":
            feedback["reason"] = reason
        elif action == "request_extension":
            feedback["requested_until"] = iso(now + timedelta(days=3))
        elif action == "resolve":
            what = (task.get("case") or {}).get("category_name") or "所反映问题"
            feedback["result"] = {
                "resolved": True,
                "summary": f"{what}已现场处置，经复查已整改到位。",
            }
        return feedback
