"""The city's places: 益阳市 (430900), its six county-level units with their real townships, and
villages, communities and grids made up to the size asked, with the departments that serve them
(a police station per township, a committee per village or community, county offices).

Codes follow the national scheme: 6 digits for a county, 9 for a township (街道 0xx, 镇 1xx,
乡 2xx), 12 for a village or community (社区 0xx–1xx, 村 2xx–3xx) and 2 more for a grid.
Deterministic for a given scale (a fixed random seed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from citydemo.bulk import Writer

CITY = ("430900", "益阳市")
# (code, name, share of the residents, townships as they are named there)
COUNTIES = [
    ("430902", "资阳区", 0.10, "汽车路街道 大码头街道 长春镇 迎风桥镇 新桥河镇 张家塞乡 茈湖口镇 沙头镇"),
    (
        "430903",
        "赫山区",
        0.20,
        "赫山街道 桃花仑街道 金银山街道 会龙山街道 龙光桥街道 泥江口镇 笔架山乡 衡龙桥镇 兰溪镇 沧水铺镇 "
        "岳家桥镇 新市渡镇 欧江岔镇 八字哨镇 泉交河镇",
    ),
    (
        "430921",
        "南县",
        0.15,
        "南洲镇 茅草街镇 三仙湖镇 明山头镇 青树嘴镇 厂窖镇 华阁镇 麻河口镇 浪拔湖镇 武圣宫镇 北洲子镇 乌嘴乡 中鱼口乡",
    ),
    (
        "430922",
        "桃江县",
        0.17,
        "花果山街道 桃花江镇 灰山港镇 武潭镇 马迹塘镇 三堂街镇 大栗港镇 松木塘镇 修山镇 石牛江镇 沾溪镇 "
        "鸬鹚渡镇 牛田镇 浮邱山乡 高桥乡",
    ),
    (
        "430923",
        "安化县",
        0.24,
        "东坪镇 梅城镇 仙溪镇 长塘镇 大福镇 羊角塘镇 冷市镇 龙塘镇 小淹镇 平口镇 柘溪镇 渠江镇 烟溪镇 江南镇 "
        "奎溪镇 滔溪镇 乐安镇 马路镇 清塘铺镇 田庄乡 古楼乡 南金乡 高明乡",
    ),
    (
        "430981",
        "沅江市",
        0.14,
        "琼湖街道 胭脂湖街道 庆云山街道 草尾镇 南大膳镇 黄茅洲镇 泗湖山镇 阳罗洲镇 共华镇 新湾镇 "
        "四季红镇 南嘴镇 茶盘洲镇",
    ),
]
VILLAGE_HEADS = [
    "桃花",
    "石门",
    "枫林",
    "杨林",
    "新塘",
    "白竹",
    "黄泥",
    "青山",
    "荷叶",
    "大湾",
    "龙泉",
    "长乐",
    "金盆",
    "柳树",
    "高坪",
    "松林",
    "竹山",
    "三星",
    "双江",
    "团结",
    "红星",
    "和平",
    "光明",
    "胜利",
    "新民",
    "向阳",
    "马鞍",
    "凤形",
    "狮子",
    "牛角",
    "茶园",
    "桂花",
    "栗山",
    "罗家",
    "刘家",
    "谢家",
    "杨家",
    "李家",
    "周家",
    "文家",
]
VILLAGE_TAILS = [
    "冲",
    "坪",
    "湾",
    "塘",
    "桥",
    "山",
    "湖",
    "洲",
    "垸",
    "溪",
    "岭",
    "坡",
    "港",
    "铺",
    "坝",
    "园",
    "口",
    "堤",
    "峰",
    "台",
]
COMMUNITY_NAMES = [
    "金山",
    "文昌",
    "建设",
    "团结",
    "新华",
    "人民",
    "朝阳",
    "东风",
    "迎宾",
    "福民",
    "康富",
    "紫竹",
    "会龙",
    "桃花",
    "资江",
    "银城",
    "站前",
    "梓山",
    "龙洲",
    "秀峰",
    "鹅羊",
    "碧云",
    "白鹿",
    "状元",
    "学门口",
    "五一",
    "春华",
    "秋实",
    "南门",
    "北门",
]
NUMERALS = "一二三四五六七八九十"
TOWNSHIP_SUFFIXES = ("街道", "镇", "乡")


def numeral(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (grid and group names)."""
    if n <= 10:
        return NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return (NUMERALS[tens - 1] if tens > 1 else "") + "十" + (NUMERALS[ones - 1] if ones else "")


def stem(name: str) -> str:
    for suffix in TOWNSHIP_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class Grid:
    id: int
    code: str
    name: str
    village: Village


@dataclass
class Village:
    id: int
    code: str
    name: str
    level: str  # village or community
    township: Township
    grids: list[Grid] = field(default_factory=list)
    committee_id: int = 0


@dataclass
class Township:
    id: int
    code: str
    name: str
    county: County
    villages: list[Village] = field(default_factory=list)
    police_id: int = 0


@dataclass
class County:
    id: int
    code: str
    name: str
    share: float
    townships: list[Township] = field(default_factory=list)
    offices: list[int] = field(default_factory=list)  # department ids of the county's own offices


@dataclass
class City:
    id: int
    code: str
    name: str
    counties: list[County] = field(default_factory=list)
    regions: int = 0
    departments: int = 0

    @property
    def townships(self) -> list[Township]:
        return [t for c in self.counties for t in c.townships]

    @property
    def villages(self) -> list[Village]:
        return [v for t in self.townships for v in t.villages]

    @property
    def grids(self) -> list[Grid]:
        return [g for v in self.villages for g in v.grids]


def _split(total: int, weights: list[float], rng: random.Random, minimum: int = 1) -> list[int]:
    """`total` split in proportion to `weights`, each part at least `minimum`, adding up exactly."""
    total = max(total, minimum * len(weights))
    scale = sum(weights)
    parts = [max(minimum, int(total * w / scale)) for w in weights]
    while sum(parts) < total:
        parts[rng.randrange(len(parts))] += 1
    while sum(parts) > total:
        i = rng.randrange(len(parts))
        if parts[i] > minimum:
            parts[i] -= 1
    return parts


def build(writer: Writer, *, grids: int, counties: tuple[str, ...] | None, now: datetime) -> City:
    """Write the regions and departments for about `grids` grids over the chosen counties."""
    rng = random.Random(430900)
    chosen = [c for c in COUNTIES if counties is None or c[0] in counties]
    next_id = writer.next_id("region")
    rows: list[tuple] = []

    def region(code: str, name: str, level: str, parent: tuple[int, str, int] | None) -> tuple[int, str, int]:
        nonlocal next_id
        rid, next_id = next_id, next_id + 1
        path = f"{parent[1] if parent else '/'}{rid}/"
        depth = parent[2] + 1 if parent else 0
        rows.append((rid, code, name, level, parent[0] if parent else None, path, depth, now))
        return rid, path, depth

    city_ref = region(*CITY, "city", None)
    city = City(city_ref[0], *CITY)
    grid_counts = _split(grids, [c[2] for c in chosen], rng)
    for (code, name, share, township_names), county_grids in zip(chosen, grid_counts, strict=True):
        county_ref = region(code, name, "county", city_ref)
        county = County(county_ref[0], code, name, share)
        city.counties.append(county)
        villages = max(1, round(county_grids / 4))
        names = township_names.split()
        townships = min(len(names), max(1, round(villages / 16)))
        per_township = _split(villages, [rng.uniform(0.7, 1.3) for _ in range(townships)], rng)
        grids_per_village = _split(county_grids, [rng.uniform(0.5, 1.5) for _ in range(villages)], rng)
        serials = {"街道": 1, "镇": 101, "乡": 201}
        v_index = 0
        for t_name, t_villages in zip(names[:townships], per_township, strict=True):
            suffix = next(s for s in TOWNSHIP_SUFFIXES if t_name.endswith(s))
            t_code = f"{code}{serials[suffix]:03d}"
            serials[suffix] += 1
            t_ref = region(t_code, t_name, "township", county_ref)
            township = Township(t_ref[0], t_code, t_name, county)
            county.townships.append(township)
            # A 街道 is all communities; a 镇 has a community or two at its seat; a 乡 is villages.
            communities = t_villages if suffix == "街道" else (min(2, t_villages - 1) if suffix == "镇" else 0)
            heads = rng.sample(VILLAGE_HEADS, len(VILLAGE_HEADS))
            used: set[str] = set()
            for n in range(t_villages):
                if n < communities:
                    level, v_code = "community", f"{t_code}{n + 1:03d}"
                    v_name = f"{COMMUNITY_NAMES[(n + rng.randrange(len(COMMUNITY_NAMES))) % len(COMMUNITY_NAMES)]}社区"
                else:
                    level, v_code = "village", f"{t_code}{200 + n - communities + 1:03d}"
                    v_name = f"{heads[n % len(heads)]}{rng.choice(VILLAGE_TAILS)}村"
                while v_name in used:  # unique within the township
                    v_name = f"{v_name[:-1]}{len(used) % 9 + 1}{v_name[-1]}" if level == "village" else f"新{v_name}"
                used.add(v_name)
                v_ref = region(v_code, v_name, level, t_ref)
                village = Village(v_ref[0], v_code, v_name, level, township)
                township.villages.append(village)
                for g in range(1, grids_per_village[v_index] + 1):
                    g_name = f"{v_name}第{numeral(g)}网格"
                    g_code = f"{v_code}{g:02d}"
                    g_ref = region(g_code, g_name, "grid", v_ref)
                    village.grids.append(Grid(g_ref[0], g_code, g_name, village))
                v_index += 1
    writer.write("region", ("id", "code", "name", "level", "parent_id", "path", "depth", "created_at"), rows)
    city.regions = len(rows)
    _departments(writer, city, now)
    return city


def _departments(writer: Writer, city: City, now: datetime) -> None:
    next_id = writer.next_id("department")
    rows: list[tuple] = []

    def department(name: str, region_id: int) -> int:
        nonlocal next_id
        did, next_id = next_id, next_id + 1
        rows.append((did, name, region_id, now))
        return did

    department(f"{city.name}文明办", city.id)
    for county in city.counties:
        county.offices = [
            department(f"{county.name}文明办", county.id),
            department(f"共青团{county.name}委员会", county.id),
            department(f"{county.name}民政局", county.id),
        ]
        for township in county.townships:
            township.police_id = department(f"{county.name}公安局{stem(township.name)}派出所", township.id)
            for village in township.villages:
                kind = "居民委员会" if village.level == "community" else "村民委员会"
                village.committee_id = department(f"{village.name}{kind}", village.id)
    writer.write("department", ("id", "name", "region_id", "created_at"), rows)
    city.departments = len(rows)
