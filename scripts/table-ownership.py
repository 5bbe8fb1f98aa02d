#!/usr/bin/env python3
"""Checks ADR 0002: each table belongs to one service, and a service touches
another service's table only where the ADR's list says so.

What a service touches is read from its source (tests left out): the
entities of `gridwork_storage::entity` it names, and table names in SQL
string literals (FROM / JOIN / INTO / UPDATE). Reads and writes are told
apart: naming `ActiveModel`, `insert`, `update_many`, `delete_many` of an
entity, or `INSERT INTO` / `UPDATE` / `DELETE FROM` in SQL, is a write.

Usage: scripts/table-ownership.py [--list]
  --list   print every service's use of each table (owned or not)
Exits 1 and names file, table and kind of use for each use the list lacks,
and for each list entry no code needs any more (the list stays exact).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The service that writes each table (ADR 0002). "shared": rows carry the
# writing service's name (outbox by producer, consumed_events by consumer).
OWNER = {
    "users": "intake", "reports": "intake", "report_events": "intake", "media": "intake",
    "media_uploads": "intake", "report_media": "intake", "refresh_tokens": "intake",
    "api_keys": "intake", "api_key_reports": "intake",
    "units": "assigner", "grid_versions": "assigner", "grid_shapes": "assigner", "centres": "assigner",
    "categories": "assigner",
    "cases": "mediation", "case_events": "mediation", "case_reports": "mediation", "supervisions": "mediation",
    "routing_tables": "mediation", "tasks": "mediation", "task_media": "mediation", "pii_reads": "mediation",
    "kpi_case_facts": "analytics", "kpi_cells": "analytics", "kpi_month_cells": "analytics",
    "revoked_tokens": "platform",
    "outbox": "shared", "consumed_events": "shared",
}

# Every use of another service's table: (service, table, "read"|"write") -> why.
# Keep in step with docs/adr/0002-one-database-tables-owned-by-service.md.
ALLOWED = {
    # Reference data every service reads (written by the grid import and seeding).
    ("intake", "categories", "read"): "report validation: which categories exist and which are petitions",
    ("mediation", "categories", "read"): "routing: a case's category decides its channel and clocks",
    ("analytics", "categories", "read"): "KPIs per category",
    ("intake", "units", "read"): "report_area: which administrative areas intake serves",
    ("intake", "centres", "read"): "a worker's grid and centre for the phone's views",
    ("intake", "grid_versions", "read"): "the grid registry intake checks report locations against",
    ("mediation", "grid_shapes", "read"): "a transfer target must be a centre that owns grids; routing by grid",
    ("mediation", "centres", "read"): "a transfer or escalation target must be a known centre",
    ("mediation", "units", "read"): "a transfer or escalation target's place in the hierarchy",
    # Case state shown to the reporting phone and used to scope media (ADR 0024).
    ("intake", "cases", "read"): "a grid worker's report shows its case's status",
    ("intake", "case_reports", "read"): "a linked report shows the case it was linked to",
    ("intake", "tasks", "read"): "media attached to a task are visible like the task's case",
    ("intake", "task_media", "read"): "media attached to a task are visible like the task's case",
    # The report's text and parties never travel on topics (ADR 0028): the
    # case detail reads them where intake stored them.
    ("mediation", "reports", "read"): "case detail and parties show the report's sealed text; a new case's search words",
    ("mediation", "media", "read"): "a task's result and a case's reports list their photos and videos, and whether each has arrived",
    ("mediation", "users", "read"): "a task is given to a grid worker who exists",
}

SERVICES = ["intake", "assigner", "mediation", "analytics", "gridwork"]
# gridwork is the operator's CLI and all-in-one runner: it seeds and imports
# reference data and runs maintenance across every table; not checked.
CHECKED = ["intake", "assigner", "mediation", "analytics"]


def entities():
    text = "".join(p.read_text() for p in sorted((ROOT / "crates/storage/src/entity").glob("*.rs")))
    out = {}
    for m in re.finditer(r"pub mod (\w+) \{.*?table_name = \"(\w+)\"", text, re.S):
        out[m.group(1)] = m.group(2)
    return out


def strip(text):
    text = re.sub(r"(?m)^\s*//.*$", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


WRITE_ENTITY = re.compile(r"\b(\w+)::(?:ActiveModel\b|Entity::(?:insert|insert_many|update|update_many|delete|delete_many|delete_by_id)\b)")
SQL_WRITE = re.compile(r"(?i)\b(?:insert\s+into|update|delete\s+from)\s+\"?(\w+)")
SQL_READ = re.compile(r"(?i)\b(?:from|join)\s+\"?(\w+)")


def uses(service, ent):
    """(table, kind) -> [files]"""
    found = {}
    src = ROOT / "services" / service / "src"
    for path in sorted(src.rglob("*.rs")):
        if path.name == "tests.rs":
            continue
        text = strip(path.read_text())
        rel = str(path.relative_to(ROOT))
        imported = set()
        for m in re.finditer(r"entity::\{([^}]*)\}", text):
            for part in m.group(1).split(","):
                name = part.strip().split(" as ")
                if name[0] in ent:
                    imported.add((name[0], name[-1].strip()))
        for m in re.finditer(r"entity::(\w+)", text):
            if m.group(1) in ent:
                imported.add((m.group(1), m.group(1)))
        written = {m.group(1) for m in WRITE_ENTITY.finditer(text)}
        for module, alias in imported:
            table = ent[module]
            found.setdefault((table, "read"), set()).add(rel)
            if alias in written:
                found.setdefault((table, "write"), set()).add(rel)
        for lit in re.findall(r'r#?"(?:[^"\\]|\\.)*"#?|"(?:[^"\\]|\\.)*"', text, re.S):
            for m in SQL_WRITE.finditer(lit):
                if m.group(1) in OWNER:
                    found.setdefault((m.group(1), "write"), set()).add(rel)
            for m in SQL_READ.finditer(lit):
                if m.group(1) in OWNER:
                    found.setdefault((m.group(1), "read"), set()).add(rel)
    return found


def homes():
    """table -> the owner module of crates/storage/src/entity/ it is declared in."""
    out = {}
    for p in sorted((ROOT / "crates/storage/src/entity").glob("*.rs")):
        for t in re.findall(r'table_name = "(\w+)"', p.read_text()):
            out[t] = p.stem
    return out


def main():
    ent = entities()
    missing = set(ent.values()) - set(OWNER)
    problems = [f"table {t} has no owner in scripts/table-ownership.py" for t in sorted(missing)]
    for t, home in sorted(homes().items()):
        if OWNER.get(t) not in (None, home):
            problems.append(f"table {t} is declared in entity/{home}.rs but owned by {OWNER[t]}")
    needed = set()
    for service in SERVICES:
        for (table, kind), files in sorted(uses(service, ent).items()):
            owner = OWNER.get(table, "?")
            if "--list" in sys.argv:
                print(f"{service:<10} {kind:<5} {table:<16} (owner {owner}) {', '.join(sorted(files))}")
            if service not in CHECKED or owner in (service, "shared"):
                continue
            key = (service, table, kind)
            needed.add(key)
            if key not in ALLOWED:
                problems.append(f"{service} {kind}s {owner}'s table {table} in {', '.join(sorted(files))}: not in ADR 0002's list")
    for key in sorted(set(ALLOWED) - needed):
        problems.append(f"ADR 0002's list allows {key[0]} to {key[2]} {key[1]}, but no code does: remove the entry")
    for p in problems:
        print(f"table-ownership: {p}")
    if problems:
        sys.exit(1)
    print(f"table-ownership: every cross-service use of a table is in ADR 0002's list ({len(needed)} uses)")


if __name__ == "__main__":
    main()
