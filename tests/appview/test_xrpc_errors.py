"""One HTTP status per XRPC error name across every namespace: every query method is probed with
missing, malformed and well-formed-but-unknown parameters, and every error it answers is checked
against `appview.errors.XRPC_STATUS`."""

from __future__ import annotations

from typing import Any

from appview.errors import XRPC_STATUS
from core.lexicon import default_lexicons
from core.lexicon_methods import Param, load_queries
from tests.appview.world import World, client

NOBODY = "did:plc:nobodyaaaaaaaaaaaaaaaaaa"
METHODS = load_queries(default_lexicons())


def _unknown(p: Param) -> Any:
    """A value that satisfies the parameter's lexicon but names nothing we hold."""
    item = p.schema.get("items", p.schema) if p.array else p.schema
    fmt = item.get("format")
    if p.type == "integer":
        return str(max(int(item.get("minimum", 1)), 1))
    if p.type == "boolean":
        return "true"
    if fmt == "at-uri":
        return f"at://{NOBODY}/fm.plyr.track/3kaaaaaaaaaaa"
    if fmt in ("did", "at-identifier"):
        return NOBODY
    if fmt == "handle":
        return "nobody.test"
    if fmt == "tid":
        return "3kaaaaaaaaaaa"
    if fmt == "datetime":
        return "2026-01-01T00:00:00Z"
    if "enum" in item:
        return item["enum"][0]
    if "knownValues" in item:
        return item["knownValues"][0]
    return "zz" if p.name in ("q", "query") else "nobody.test" if p.name == "actor" else "zz"


def _probes(nsid: str) -> list[list[tuple[str, Any]]]:
    params = METHODS[nsid].params
    unknown = [(p.name, _unknown(p)) for p in params.values() if p.required]
    probes = [[], unknown, [(n, v) for n, v in unknown] + [("cursor", "\x00not-a-cursor")]]
    for p in params.values():
        probes.append([*((n, v) for n, v in unknown if n != p.name), (p.name, _unknown(p))])
        if p.type == "integer":
            probes.append([*unknown, (p.name, "-99999999999999999999")])
    return probes


async def test_every_method_answers_each_error_name_with_one_status(db_url: str) -> None:
    w = World(db_url)
    w.actor("did:plc:artistaaaaaaaaaaaaaaaaaa", "artist.test")
    await w.flush()
    seen: dict[str, set[tuple[int, str]]] = {}
    async with client(db_url) as http:
        for nsid in sorted(METHODS):
            for probe in _probes(nsid):
                r = await http.get(f"/xrpc/{nsid}", params=probe)
                assert r.status_code < 500, (nsid, probe, r.text)
                if r.status_code == 200:
                    continue
                body = r.json()
                assert set(body) >= {"error", "message"}, (nsid, probe, body)
                seen.setdefault(body["error"], set()).add((r.status_code, nsid))
    assert {"InvalidRequest", "ActorNotFound", "NotFound", "RecordNotFound"} <= set(seen)
    for name, answers in seen.items():
        statuses = {s for s, _ in answers}
        assert len(statuses) == 1, f"{name} answered with {sorted(answers)}"
        assert name not in XRPC_STATUS or statuses == {XRPC_STATUS[name]}, (name, sorted(answers))
