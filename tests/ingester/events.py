"""Builders of synthetic log events for projector and property tests."""

from __future__ import annotations

from typing import Any

from core.events import RecordEvent, RepoEvent

T0 = "2026-11-24T12:00:00.000Z"


def track(title: str = "song", **extra: Any) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "artist", "fileType": "mp3",
            "audioUrl": "https://audio.plyr.fm/audio/x.mp3", "createdAt": T0, **extra}


def strong_ref(uri: str, cid: str = "bafyreiaaaa") -> dict[str, str]:
    return {"uri": uri, "cid": cid}


def like(subject: str) -> dict[str, Any]:
    return {"$type": "fm.plyr.like", "subject": strong_ref(subject), "createdAt": T0}


def comment(subject: str, text: str = "nice", ms: int = 1000) -> dict[str, Any]:
    return {"$type": "fm.plyr.comment", "subject": strong_ref(subject), "text": text,
            "timestampMs": ms, "createdAt": T0}


def plist(items: list[str], name: str = "mix", list_type: str = "playlist") -> dict[str, Any]:
    return {"$type": "fm.plyr.list", "name": name, "listType": list_type, "createdAt": T0,
            "items": [{"subject": strong_ref(u)} for u in items]}


def profile(bio: str = "hello") -> dict[str, Any]:
    return {"$type": "fm.plyr.actor.profile", "bio": bio, "createdAt": T0}


def put(did: str, collection: str, rkey: str, rev: str, record: dict[str, Any],
        action: str = "create", cid: str | None = None, source: str = "test") -> RecordEvent:
    return RecordEvent(did=did, collection=collection, rkey=rkey, rev=rev, action=action,  # type: ignore[arg-type]
                       cid=cid or f"bafy{collection[8:12]}{rkey}{rev}", record=record, source=source,
                       source_seq=None, verified=True)


def delete(did: str, collection: str, rkey: str, rev: str, source: str = "test") -> RecordEvent:
    return RecordEvent(did=did, collection=collection, rkey=rkey, rev=rev, action="delete", cid=None,
                       record=None, source=source, source_seq=None, verified=True)


def identity(did: str, handle: str) -> RepoEvent:
    return RepoEvent(did=did, kind="identity", payload={"handle": handle, "pds": "https://pds.example",
                                                         "signing_key": "did:key:zQ3sh"}, source="test")


def account(did: str, active: bool, status: str | None = None) -> RepoEvent:
    payload: dict[str, Any] = {"active": active}
    if status:
        payload["status"] = status
    return RepoEvent(did=did, kind="account", payload=payload, source="test")
