"""Checks for data/thread.yaml, the index of the 2016 vfio/THP thread.

Each rule is a small function that returns a list of problems (empty means
fine). The tests run every rule on the real file, and a few tests also feed
broken copies to the rules to make sure the rules do catch mistakes.
"""

import copy
import re
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

DATA_FILE = Path(__file__).parents[1] / "data" / "thread.yaml"

EXPECTED_IDS = [f"M{n:02d}" for n in range(1, 45)]
STATUSES = {"R", "Rp", "Q", "S", "not-found"}
SUBJECT_SOURCES = {"header", "reply", "parent"}
MESSAGE_REQUIRED = {
    "id", "message_id", "date", "author", "replies_to", "subject",
    "subject_from", "summary", "status", "link",
}
MESSAGE_OPTIONAL = {"date_note"}

COMMIT_ROLES = {"bisected", "background", "fix", "follow-up", "later"}
COMMIT_REQUIRED = {"id", "subject", "role"}
COMMIT_OPTIONAL = {
    "date", "version", "confidence", "fixes", "posted_as", "cited_in", "note",
}
REQUIRED_COMMITS = {
    "1f25fe20a76a", "53f9263baba6", "ddc58f27f9ee", "61f5d698cc97",
    "6d0a07edd17c", "c444eb564fb1", "0798d3c022dc", "09854ba94c6a",
    "17839856fd58", "3917c80280c9", "3bff7e3f1f16", "6c287605fd56",
    "1da190f4d0a6", "70e806e4e645",
}

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
COMMIT_ID = re.compile(r"^[0-9a-f]{12}$")
HEX12_TOKEN = re.compile(r"\b[0-9a-f]{12}\b")
VERSION = re.compile(r"^v\d+\.\d+$")
MAX_SUMMARY = 200


# --------------------------------------------------------------------------
# helpers


def load():
    with DATA_FILE.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def is_single_line(text):
    return isinstance(text, str) and text.strip() != "" and "\n" not in text and "\r" not in text


def is_inferred(msg):
    """True when the date was not read from a Date: header (see file header)."""
    note = msg.get("date_note")
    return isinstance(note, str) and note.strip().lower().startswith("inferred")


def parse_date(value):
    """Return an aware datetime, or None when the value is not usable."""
    if not isinstance(value, str) or not ISO_WITH_OFFSET.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed


def strip_re(subject):
    return subject[4:] if subject.startswith("Re: ") else subject


# --------------------------------------------------------------------------
# rules on messages


def check_message_fields(messages):
    problems = []
    for msg in messages:
        keys = set(msg)
        missing = MESSAGE_REQUIRED - keys
        unknown = keys - MESSAGE_REQUIRED - MESSAGE_OPTIONAL
        if missing:
            problems.append(f"{msg.get('id')}: missing {sorted(missing)}")
        if unknown:
            problems.append(f"{msg.get('id')}: unknown fields {sorted(unknown)}")
        for key in ("author", "subject", "message_id"):
            if key in msg and not is_single_line(msg[key]):
                problems.append(f"{msg.get('id')}: {key} must be a one-line string")
        if msg.get("status") not in STATUSES:
            problems.append(f"{msg.get('id')}: bad status {msg.get('status')!r}")
        if msg.get("subject_from") not in SUBJECT_SOURCES:
            problems.append(f"{msg.get('id')}: bad subject_from {msg.get('subject_from')!r}")
        if "date_note" in msg and not is_single_line(msg["date_note"]):
            problems.append(f"{msg.get('id')}: date_note must be a one-line string")
    return problems


def check_ids(messages):
    problems = []
    ids = [m.get("id") for m in messages]
    if ids != EXPECTED_IDS:
        problems.append(f"ids are not M01..M44 in table order: {ids}")
    for key in ("id", "message_id", "link"):
        values = [m.get(key) for m in messages]
        dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
        if dupes:
            problems.append(f"duplicate {key}: {dupes}")
    return problems


def check_replies(messages):
    problems = []
    position = {m.get("id"): i for i, m in enumerate(messages)}
    for i, msg in enumerate(messages):
        parent = msg.get("replies_to")
        if parent is None:
            continue
        if parent not in position:
            problems.append(f"{msg['id']}: replies_to {parent!r} is not a message id")
        elif parent == msg["id"]:
            problems.append(f"{msg['id']}: replies to itself")
        elif position[parent] > i:
            problems.append(f"{msg['id']}: parent {parent} comes later in the table")
    return problems


def check_dates(messages):
    problems = []
    by_id = {m.get("id"): m for m in messages}
    for msg in messages:
        when = parse_date(msg.get("date"))
        if when is None:
            problems.append(f"{msg.get('id')}: date {msg.get('date')!r} is not ISO 8601 with a zone offset")
            continue
        if not date(2016, 4, 28) <= when.date() <= date(2016, 5, 31):
            problems.append(f"{msg['id']}: date {msg['date']} is outside the thread's span")
        if msg.get("status") == "not-found" and not is_inferred(msg):
            problems.append(f"{msg['id']}: no copy was found, so its date must be marked inferred")
        parent = by_id.get(msg.get("replies_to"))
        if parent is None or is_inferred(msg) or is_inferred(parent):
            continue
        parent_when = parse_date(parent.get("date"))
        if parent_when is not None and parent_when > when:
            problems.append(f"{msg['id']}: dated {msg['date']}, before its parent {parent['id']} ({parent['date']})")
    return problems


def check_links(messages):
    problems = []
    for msg in messages:
        mid = msg.get("message_id", "")
        if not isinstance(mid, str) or mid.count("@") != 1 or re.search(r"[<>\s]", mid):
            problems.append(f"{msg.get('id')}: malformed message_id {mid!r}")
        expected = f"https://lore.kernel.org/all/{mid}/"
        if msg.get("link") != expected:
            problems.append(f"{msg.get('id')}: link {msg.get('link')!r} != {expected!r}")
    return problems


def check_summaries(messages):
    problems = []
    for msg in messages:
        text = msg.get("summary")
        if not is_single_line(text):
            problems.append(f"{msg.get('id')}: summary must be one non-empty line")
            continue
        if len(text) >= MAX_SUMMARY:
            problems.append(f"{msg['id']}: summary is {len(text)} chars (limit {MAX_SUMMARY})")
        if text.lstrip().startswith(">") or re.search(r"(^|\n)\s*>", text):
            problems.append(f"{msg['id']}: summary looks like quoted email text")
        if '"' in text:
            problems.append(f"{msg['id']}: summary contains a quotation; paraphrase instead")
    return problems


def check_subjects(messages):
    problems = []
    by_id = {m.get("id"): m for m in messages}
    for msg in messages:
        subject = msg.get("subject")
        if not isinstance(subject, str):
            continue
        if msg.get("replies_to") is None and subject.startswith("Re:"):
            problems.append(f"{msg['id']}: starts a thread but its subject starts with Re:")
        if msg.get("subject_from") == "parent":
            parent = by_id.get(msg.get("replies_to"))
            if parent is None:
                problems.append(f"{msg['id']}: subject_from parent, but it has no parent")
            elif subject != "Re: " + strip_re(parent["subject"]):
                problems.append(f"{msg['id']}: subject should be 'Re: ' + the subject of {parent['id']}")
    return problems


# --------------------------------------------------------------------------
# rules on commits


def check_commits(commits, message_ids):
    problems = []
    ids = [c.get("id") for c in commits]
    known = set(ids)
    dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dupes:
        problems.append(f"duplicate commit ids: {dupes}")
    missing = REQUIRED_COMMITS - known
    if missing:
        problems.append(f"required commits missing: {sorted(missing)}")
    for c in commits:
        cid = c.get("id")
        keys = set(c)
        if COMMIT_REQUIRED - keys:
            problems.append(f"{cid}: missing {sorted(COMMIT_REQUIRED - keys)}")
        if keys - COMMIT_REQUIRED - COMMIT_OPTIONAL:
            problems.append(f"{cid}: unknown fields {sorted(keys - COMMIT_REQUIRED - COMMIT_OPTIONAL)}")
        if not isinstance(cid, str) or not COMMIT_ID.match(cid):
            problems.append(f"{cid!r}: commit id must be 12 lowercase hex digits")
        if not is_single_line(c.get("subject")):
            problems.append(f"{cid}: subject must be a one-line string")
        if c.get("role") not in COMMIT_ROLES:
            problems.append(f"{cid}: bad role {c.get('role')!r}")
        if "date" in c:
            try:
                if not isinstance(c["date"], str) or len(c["date"]) != 10:
                    raise ValueError
                date.fromisoformat(c["date"])
            except ValueError:
                problems.append(f"{cid}: date {c['date']!r} is not a quoted YYYY-MM-DD")
        if "version" in c and not (isinstance(c["version"], str) and VERSION.match(c["version"])):
            problems.append(f"{cid}: version {c['version']!r} is not like v4.6")
        if "confidence" in c and c["confidence"] != "unverified":
            problems.append(f"{cid}: confidence may only be 'unverified'")
        if "fixes" in c and c["fixes"] not in known:
            problems.append(f"{cid}: fixes {c['fixes']!r} is not in the commit list")
        for key in ("posted_as", "cited_in"):
            refs = c.get(key, [])
            if not isinstance(refs, list) or not all(r in message_ids for r in refs):
                problems.append(f"{cid}: {key} must list existing message ids, got {refs!r}")
    return problems


def check_summary_commit_refs(messages, commits):
    """Every 12-hex commit id named in a summary must be in the commit list."""
    known = {c.get("id") for c in commits}
    problems = []
    for msg in messages:
        for token in HEX12_TOKEN.findall(msg.get("summary") or ""):
            if token not in known:
                problems.append(f"{msg['id']}: summary names {token}, which is not in commits")
    return problems


# --------------------------------------------------------------------------
# tests on the real file


@pytest.fixture(scope="module")
def data():
    loaded = load()
    assert isinstance(loaded, dict), "thread.yaml must hold a mapping"
    assert isinstance(loaded.get("messages"), list), "messages must be a list"
    assert isinstance(loaded.get("commits"), list), "commits must be a list"
    return loaded


def test_message_fields(data):
    assert check_message_fields(data["messages"]) == []


def test_ids_complete_unique_and_in_order(data):
    assert check_ids(data["messages"]) == []


def test_replies_to_existing_earlier_messages(data):
    assert check_replies(data["messages"]) == []


def test_dates_have_zone_and_parents_come_first(data):
    assert check_dates(data["messages"]) == []


def test_links_point_to_lore(data):
    assert check_links(data["messages"]) == []


def test_summaries_are_short_own_words(data):
    assert check_summaries(data["messages"]) == []


def test_subjects(data):
    assert check_subjects(data["messages"]) == []


def test_commits(data):
    message_ids = {m["id"] for m in data["messages"]}
    assert check_commits(data["commits"], message_ids) == []


def test_commit_ids_in_summaries_are_listed(data):
    assert check_summary_commit_refs(data["messages"], data["commits"]) == []


def test_known_inferred_dates(data):
    """thread.md infers the times of M24, M40 and M42 from their Message-IDs."""
    inferred = {m["id"] for m in data["messages"] if is_inferred(m)}
    assert inferred == {"M24", "M40", "M42"}


# --------------------------------------------------------------------------
# the rules must reject broken data


def _mutated(data, msg_id, **changes):
    messages = copy.deepcopy(data["messages"])
    for msg in messages:
        if msg["id"] == msg_id:
            msg.update(changes)
    return messages


def test_rules_reject_broken_messages(data):
    assert check_ids(_mutated(data, "M05", id="M04"))
    assert check_replies(_mutated(data, "M05", replies_to="M99"))
    assert check_replies(_mutated(data, "M05", replies_to="M07"))
    assert check_dates(_mutated(data, "M05", date="2016-04-28T18:44:30"))
    assert check_dates(_mutated(data, "M05", date="2016-04-28T10:00:00-06:00"))
    assert check_links(_mutated(data, "M05", link="https://lore.kernel.org/all/x/"))
    assert check_summaries(_mutated(data, "M05", summary="fine\n> quoted line"))
    assert check_summaries(_mutated(data, "M05", summary="> quoted"))
    assert check_summaries(_mutated(data, "M05", summary="x" * MAX_SUMMARY))
    assert check_message_fields(_mutated(data, "M05", status="maybe"))
    assert check_subjects(_mutated(data, "M13", subject="Re: something else"))


def test_inferred_note_skips_only_the_order_check(data):
    # M25's Date header is earlier than M24's Message-ID time; the pair passes
    # only because M24's date is marked inferred.
    messages = _mutated(data, "M24", date_note="from the Message-ID")
    assert any("M25" in p for p in check_dates(messages))


def test_rules_reject_broken_commits(data):
    message_ids = {m["id"] for m in data["messages"]}
    bad = copy.deepcopy(data["commits"])
    bad[0]["id"] = bad[0]["id"].upper()
    assert check_commits(bad, message_ids)
    bad = copy.deepcopy(data["commits"]) + [{"id": "abc", "subject": "x", "role": "fix"}]
    assert check_commits(bad, message_ids)
    bad = copy.deepcopy(data["commits"])
    bad[0]["fixes"] = "000000000000"
    assert check_commits(bad, message_ids)
    bad = [c for c in data["commits"] if c["id"] != "6d0a07edd17c"]
    assert check_commits(bad, message_ids)
    assert check_summary_commit_refs(data["messages"], bad)
