#!/usr/bin/env python3
"""The database's ceiling for intake's writes, as a pgbench script.

Reads one report that gridwork's intake stored (its row in `reports`, its
first `report_events` entry and its `outbox` row) from DATABASE_URL and
writes a pgbench custom script that stores BATCH such reports per
transaction: the same columns and the same values (so the same sizes), a
fresh id per report, as three multi-row INSERTs (reports with
`ON CONFLICT (id) DO NOTHING RETURNING id`, as intake's group commit does).

    scripts/pgbench-ceiling.py DATABASE_URL BATCH > ceiling.sql
    pgbench -n -f ceiling.sql -c 4 -j 2 -T 10 OTHER_DATABASE_URL

pgbench substitutes `:r` and `:client_id` everywhere in the text, quoted
literals included, so each report id is unique per transaction and client
(and leaves any other `:word`, such as a time's minutes, as it is).
"""

import json
import re
import subprocess
import sys


def one(url: str, sql: str) -> dict:
    out = subprocess.run(["psql", "-qtA", url, "-c", sql], check=True, capture_output=True, text=True).stdout
    line = out.strip().splitlines()
    if not line:
        sys.exit(f"pgbench-ceiling: nothing found by: {sql}")
    return json.loads(line[0])


def literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (dict, list)):
        v = json.dumps(v, ensure_ascii=False)
    s = str(v).replace("'", "''")
    # pgbench leaves `:name` alone unless a variable has that name.
    if re.search(r":(r|client_id)(?![A-Za-z0-9_])", s):
        sys.exit(f"pgbench-ceiling: a value reads as a pgbench variable: {s!r}")
    return f"'{s}'"


def rows(table: str, row: dict, skip: set, ident: dict, batch: int, suffix: str) -> str:
    cols = [c for c in row if c not in skip]
    values = []
    for i in range(batch):
        id_ = f"bench-:r-:client_id-{i:06d}"
        vals = []
        for c in cols:
            if c in ident:
                vals.append(ident[c](id_))
            else:
                vals.append(literal(row[c]))
        values.append("(" + ", ".join(vals) + ")")
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES\n" + ",\n".join(values) + suffix + ";\n"


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, batch = sys.argv[1], int(sys.argv[2])
    report = one(url, "SELECT row_to_json(r) FROM reports r ORDER BY received_at LIMIT 1")
    rid = report["id"]
    event = one(url, f"SELECT row_to_json(e) FROM report_events e WHERE report_id = '{rid}' ORDER BY id LIMIT 1")
    # bytea as hex text, so that it can be written back as a literal.
    outbox = one(
        url,
        "SELECT json_build_object('producer', producer, 'topic', topic, 'msg_key', msg_key::text, "
        "'payload', payload::text, 'created_at', created_at, 'sent_at', NULL) "
        f"FROM outbox WHERE msg_key = convert_to('{rid}', 'UTF8') LIMIT 1",
    )
    q = lambda s: f"'{s}'"  # noqa: E731
    print("\\set r random(1, 9000000000000000000)")
    print("BEGIN;")
    print(rows("reports", report, set(), {"id": q}, batch, "\nON CONFLICT (id) DO NOTHING RETURNING id"), end="")
    print(rows("report_events", event, {"id"}, {"report_id": q}, batch, ""), end="")
    # bytea reads the id's characters as they are, and `\x…` as hex.
    print(rows("outbox", outbox, set(), {"msg_key": q}, batch, ""), end="")
    print("COMMIT;")


if __name__ == "__main__":
    main()
