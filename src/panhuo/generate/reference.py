"""Reference data of the synthetic brokerage: provinces and cities, branches and advisors, symbols.

Everything here is fixed or drawn once per seed (never per customer block), so that every block
of customers shares the same branch network and the same symbol universe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = [
    "PROVINCES",
    "Geography",
    "Universe",
    "build_geography",
    "build_universe",
    "pick_symbols",
    "STOCK",
    "FUND",
    "BOND",
    "OPTION",
    "OTHER",
]

# Index of each asset class in panhuo.contract.schema.ASSET_CLASSES.
STOCK, FUND, BOND, OPTION, OTHER = 0, 1, 2, 3, 4
# Index of each market in panhuo.contract.schema.MARKETS.
SH, SZ, BJ, OTC = 0, 1, 2, 3

# (province, admin code, cities, weight in the brokerage's customer base)
PROVINCES: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("北京市", "11", ("北京市",), 6.0),
    ("天津市", "12", ("天津市",), 2.0),
    ("河北省", "13", ("石家庄市", "唐山市", "保定市"), 3.0),
    ("山西省", "14", ("太原市", "大同市"), 1.5),
    ("内蒙古自治区", "15", ("呼和浩特市", "包头市"), 1.0),
    ("辽宁省", "21", ("沈阳市", "大连市"), 2.5),
    ("吉林省", "22", ("长春市", "吉林市"), 1.2),
    ("黑龙江省", "23", ("哈尔滨市", "大庆市"), 1.5),
    ("上海市", "31", ("上海市",), 8.0),
    ("江苏省", "32", ("南京市", "苏州市", "无锡市", "常州市"), 8.0),
    ("浙江省", "33", ("杭州市", "宁波市", "温州市", "绍兴市"), 8.0),
    ("安徽省", "34", ("合肥市", "芜湖市"), 3.0),
    ("福建省", "35", ("福州市", "厦门市", "泉州市"), 4.0),
    ("江西省", "36", ("南昌市", "赣州市"), 2.0),
    ("山东省", "37", ("济南市", "青岛市", "烟台市"), 5.0),
    ("河南省", "41", ("郑州市", "洛阳市"), 4.0),
    ("湖北省", "42", ("武汉市", "宜昌市"), 3.5),
    ("湖南省", "43", ("长沙市", "株洲市"), 3.0),
    ("广东省", "44", ("广州市", "深圳市", "东莞市", "佛山市"), 11.0),
    ("广西壮族自治区", "45", ("南宁市", "柳州市"), 1.8),
    ("海南省", "46", ("海口市", "三亚市"), 0.7),
    ("重庆市", "50", ("重庆市",), 2.5),
    ("四川省", "51", ("成都市", "绵阳市"), 4.5),
    ("贵州省", "52", ("贵阳市", "遵义市"), 1.2),
    ("云南省", "53", ("昆明市", "曲靖市"), 1.5),
    ("西藏自治区", "54", ("拉萨市",), 0.2),
    ("陕西省", "61", ("西安市", "宝鸡市"), 2.2),
    ("甘肃省", "62", ("兰州市", "天水市"), 0.8),
    ("青海省", "63", ("西宁市",), 0.3),
    ("宁夏回族自治区", "64", ("银川市",), 0.4),
    ("新疆维吾尔自治区", "65", ("乌鲁木齐市", "克拉玛依市"), 1.0),
)

_TOTAL_BRANCHES = 150


@dataclass(frozen=True)
class Geography:
    """Branches (营业部) with their province and city, and the advisors of each branch."""

    province_names: pa.Array  # string, one per province
    city_names: pa.Array  # string, one per city
    province_weight: np.ndarray  # float64, sums to 1
    province_branches: list[np.ndarray]  # branch indices of each province
    branch_ids: pa.Array  # string
    branch_city: np.ndarray  # int, index into city_names
    advisor_ids: pa.Array  # string, all advisors
    branch_advisor_start: np.ndarray  # int, first advisor index of each branch
    branch_advisor_count: np.ndarray  # int


def build_geography(rng: np.random.Generator) -> Geography:
    weights = np.array([p[3] for p in PROVINCES])
    weights = weights / weights.sum()
    city_names: list[str] = []
    branch_ids: list[str] = []
    branch_city: list[int] = []
    province_branches: list[np.ndarray] = []
    for (_name, code, cities, _w), share in zip(PROVINCES, weights):
        first_city = len(city_names)
        city_names.extend(cities)
        n_branches = max(1, int(round(_TOTAL_BRANCHES * share)))
        start = len(branch_ids)
        for k in range(n_branches):
            branch_ids.append(f"B{code}{k + 1:02d}")
            # The capital gets every other branch, the other cities share the rest.
            city = 0 if (k % 2 == 0 or len(cities) == 1) else 1 + (k // 2) % (len(cities) - 1)
            branch_city.append(first_city + city)
        province_branches.append(np.arange(start, len(branch_ids)))
    n_adv = rng.integers(4, 16, size=len(branch_ids))
    advisor_ids = [f"A{b[1:]}{k + 1:03d}" for b, n in zip(branch_ids, n_adv) for k in range(n)]
    starts = np.concatenate([[0], np.cumsum(n_adv)[:-1]])
    return Geography(
        province_names=pa.array([p[0] for p in PROVINCES], pa.string()),
        city_names=pa.array(city_names, pa.string()),
        province_weight=weights,
        province_branches=province_branches,
        branch_ids=pa.array(branch_ids, pa.string()),
        branch_city=np.array(branch_city),
        advisor_ids=pa.array(advisor_ids, pa.string()),
        branch_advisor_start=starts,
        branch_advisor_count=n_adv,
    )


@dataclass(frozen=True)
class Universe:
    """The tradable symbols: code, market, asset class, reference price and popularity."""

    codes: pa.Array  # string
    market: np.ndarray  # int8, index into MARKETS
    asset_class: np.ndarray  # int8, index into ASSET_CLASSES
    price: np.ndarray  # float64, RMB per unit (per share, per bond, per option unit, per repo 张)
    by_class: list[np.ndarray]  # symbol indices of each asset class
    class_cum_pop: list[np.ndarray]  # cumulative popularity inside each class (for sampling)


def _codes(rng: np.random.Generator, lo: int, hi: int, n: int, width: int = 6) -> list[str]:
    picks = np.sort(rng.choice(np.arange(lo, hi + 1), size=min(n, hi - lo + 1), replace=False))
    return [f"{int(c):0{width}d}" for c in picks]


def build_universe(rng: np.random.Generator) -> Universe:
    rows: list[tuple[list[str], int, int]] = [
        # A-shares: Shanghai main board and STAR market, Shenzhen main board and ChiNext, Beijing.
        (_codes(rng, 600000, 605999, 1700), SH, STOCK),
        (_codes(rng, 688000, 688999, 580), SH, STOCK),
        (_codes(rng, 1, 3999, 1500), SZ, STOCK),
        (_codes(rng, 300001, 301999, 1350), SZ, STOCK),
        (_codes(rng, 830000, 873999, 200) + _codes(rng, 920000, 920999, 60), BJ, STOCK),
        # Exchange-traded funds and LOFs, and OTC mutual funds (场外基金).
        (_codes(rng, 510000, 589999, 500), SH, FUND),
        (_codes(rng, 159000, 159999, 400) + _codes(rng, 160000, 169999, 100), SZ, FUND),
        (_codes(rng, 1, 25999, 3000), OTC, FUND),
        # Convertible and government bonds.
        (_codes(rng, 110000, 118999, 250) + _codes(rng, 19000, 19999, 50), SH, BOND),
        (_codes(rng, 123000, 128999, 250), SZ, BOND),
        # ETF options: the exchanges use 8-digit contract codes.
        (_codes(rng, 10000001, 10009999, 400, width=8), SH, OPTION),
        (_codes(rng, 90000001, 90009999, 200, width=8), SZ, OPTION),
        # Treasury reverse repo (国债逆回购).
        (["204001", "204002", "204003", "204004", "204007", "204014", "204028", "204091", "204182"], SH, OTHER),
        (["131810", "131811", "131800", "131809", "131801", "131802", "131803", "131805", "131806"], SZ, OTHER),
    ]
    codes: list[str] = []
    market: list[np.ndarray] = []
    klass: list[np.ndarray] = []
    for c, m, k in rows:
        codes.extend(c)
        market.append(np.full(len(c), m, np.int8))
        klass.append(np.full(len(c), k, np.int8))
    mk = np.concatenate(market)
    ac = np.concatenate(klass)
    n = len(codes)
    price = np.empty(n)
    price[ac == STOCK] = np.exp(rng.normal(np.log(12.0), 0.8, (ac == STOCK).sum()))
    etf = (ac == FUND) & (mk != OTC)
    price[etf] = np.exp(rng.normal(np.log(1.5), 0.5, etf.sum()))
    otc = (ac == FUND) & (mk == OTC)
    price[otc] = rng.uniform(0.7, 3.5, otc.sum())
    price[ac == BOND] = rng.uniform(98.0, 140.0, (ac == BOND).sum())
    price[ac == OPTION] = np.exp(rng.normal(np.log(0.08), 0.9, (ac == OPTION).sum()))
    price[ac == OTHER] = 100.0
    pop = rng.pareto(1.1, n) + 0.05  # a few symbols are very popular
    by_class = [np.flatnonzero(ac == k) for k in range(5)]
    cum = []
    for idx in by_class:
        c = np.cumsum(pop[idx])
        cum.append(c / c[-1])
    return Universe(pa.array(codes, pa.string()), mk, ac, price, by_class, cum)


def pick_symbols(uni: Universe, klass: int, u: np.ndarray) -> np.ndarray:
    """Symbols of asset class ``klass`` drawn by popularity, one per uniform number in ``u``."""
    idx = uni.by_class[klass]
    return idx[np.searchsorted(uni.class_cum_pop[klass], u, side="right").clip(0, len(idx) - 1)]
