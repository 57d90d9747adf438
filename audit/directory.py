"""The company directory as plain values: org units, staff, customers, follow relations,
tags and rooms.

Three producers fill it (the simulator, the CSV/XLSX imports and the WeCom contact sync) and
one consumer loads it into the store (:mod:`audit.store.directory`), so none of them needs to
know the others. ``World.to_json`` / ``World.from_json`` round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OrgUnitSpec:
    code: str
    name: str
    kind: str  # "region" | "city" | "store"
    parent_code: str | None


@dataclass(frozen=True)
class StaffSpec:
    userid: str
    name: str
    store_code: str
    position: str  # 店长 / 值班经理 / 营业员 / 店员 / 客户经理 / 装维工程师


@dataclass(frozen=True)
class CustomerSpec:
    external_userid: str
    name: str
    type: int  # 1: WeChat user, 2: WeCom user of another company
    gender: int  # 0 unknown, 1 male, 2 female
    traditional: bool  # writes in traditional Chinese


@dataclass(frozen=True)
class FollowSpec:
    userid: str
    external_userid: str
    remark: str
    createtime: int  # seconds since epoch
    add_way: int
    state: str  # acquisition channel, e.g. "qr_store_S001", "poster_5g", "live_stream"


@dataclass(frozen=True)
class TagSpec:
    id: str
    name: str
    order: int


@dataclass(frozen=True)
class TagGroupSpec:
    group_id: str
    name: str
    order: int
    tags: tuple[TagSpec, ...]


@dataclass(frozen=True)
class CustomerTagSpec:
    external_userid: str
    tag_id: str
    userid: str


@dataclass(frozen=True)
class RoomSpec:
    roomid: str
    name: str
    creator: str
    create_time: int  # seconds since epoch
    store_code: str
    members: tuple[str, ...]  # staff userids, external userids and robots ("wb...")


@dataclass(frozen=True)
class World:
    corpid: str
    org_units: tuple[OrgUnitSpec, ...]
    staff: tuple[StaffSpec, ...]
    customers: tuple[CustomerSpec, ...]
    follows: tuple[FollowSpec, ...]
    tag_groups: tuple[TagGroupSpec, ...]
    customer_tags: tuple[CustomerTagSpec, ...]
    rooms: tuple[RoomSpec, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data (dicts and lists), keys in a stable order."""
        return {
            "corpid": self.corpid,
            "org_units": [
                {"code": u.code, "name": u.name, "kind": u.kind, "parent_code": u.parent_code}
                for u in self.org_units
            ],
            "staff": [
                {
                    "userid": s.userid,
                    "name": s.name,
                    "store_code": s.store_code,
                    "position": s.position,
                }
                for s in self.staff
            ],
            "customers": [
                {
                    "external_userid": c.external_userid,
                    "name": c.name,
                    "type": c.type,
                    "gender": c.gender,
                    "traditional": c.traditional,
                }
                for c in self.customers
            ],
            "follows": [
                {
                    "userid": f.userid,
                    "external_userid": f.external_userid,
                    "remark": f.remark,
                    "createtime": f.createtime,
                    "add_way": f.add_way,
                    "state": f.state,
                }
                for f in self.follows
            ],
            "tag_groups": [
                {
                    "group_id": g.group_id,
                    "name": g.name,
                    "order": g.order,
                    "tags": [{"id": t.id, "name": t.name, "order": t.order} for t in g.tags],
                }
                for g in self.tag_groups
            ],
            "customer_tags": [
                {"external_userid": t.external_userid, "tag_id": t.tag_id, "userid": t.userid}
                for t in self.customer_tags
            ],
            "rooms": [
                {
                    "roomid": r.roomid,
                    "name": r.name,
                    "creator": r.creator,
                    "create_time": r.create_time,
                    "store_code": r.store_code,
                    "members": list(r.members),
                }
                for r in self.rooms
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> World:
        return cls(
            corpid=str(data["corpid"]),
            org_units=tuple(OrgUnitSpec(**u) for u in data["org_units"]),
            staff=tuple(StaffSpec(**s) for s in data["staff"]),
            customers=tuple(CustomerSpec(**c) for c in data["customers"]),
            follows=tuple(FollowSpec(**f) for f in data["follows"]),
            tag_groups=tuple(
                TagGroupSpec(
                    group_id=g["group_id"],
                    name=g["name"],
                    order=g["order"],
                    tags=tuple(TagSpec(**t) for t in g["tags"]),
                )
                for g in data["tag_groups"]
            ),
            customer_tags=tuple(CustomerTagSpec(**t) for t in data["customer_tags"]),
            rooms=tuple(
                RoomSpec(
                    roomid=r["roomid"],
                    name=r["name"],
                    creator=r["creator"],
                    create_time=r["create_time"],
                    store_code=r["store_code"],
                    members=tuple(r["members"]),
                )
                for r in data["rooms"]
            ),
        )

    # convenience look-ups (not part of the JSON)
    def store_units(self) -> tuple[OrgUnitSpec, ...]:
        return tuple(u for u in self.org_units if u.kind == "store")

    def unit(self, code: str) -> OrgUnitSpec:
        for u in self.org_units:
            if u.code == code:
                return u
        raise KeyError(code)
