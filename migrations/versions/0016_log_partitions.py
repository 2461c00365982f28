"""record_event partitioned by seq range; the dedup key in its own table

Revision ID: 0016
Revises: 0014

A unique index on a partitioned table must contain the partition key, so the dedup key
(did, collection, rkey, rev, action, verified) can no longer be a unique index of `record_event`.
It moves to `record_event_key` (one row per appended record event, never partitioned, never
trimmed): the append inserts the key first (ON CONFLICT DO NOTHING) and only the rows whose key
went in reach the log, in the same statement (a TRUNCATE of the log empties it too). Partitions are
[lo, hi) ranges of seq, listed by the view `log_partition` (read from the catalog, so it can never
disagree with it); `record_event_ensure_partitions(upto)` creates them ahead of need (the ingester
calls it in the append transaction, ingester/eventlog/partitions.py). The table is converted in place:
new partitioned table, rows moved, names swapped; `event_seq` is untouched.
"""
from __future__ import annotations

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

DEFAULT_PARTITION_SIZE = 10_000_000  # LOG_PARTITION_SIZE's default; the ingester sets the live value

_PARTITIONS = r"""
CREATE VIEW log_partition AS
SELECT c.relname::text AS name,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''?(-?[0-9]+)''?\)')::bigint AS lo,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::bigint AS hi
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'record_event'::regclass
"""
_TRUNCATE_KEYS = """
CREATE FUNCTION record_event_truncate_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Already empty when one TRUNCATE named both tables (and truncating it again here would fail).
    IF EXISTS (SELECT 1 FROM record_event_key) THEN
        TRUNCATE record_event_key;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER record_event_truncate_keys AFTER TRUNCATE ON record_event
    FOR EACH STATEMENT EXECUTE FUNCTION record_event_truncate_keys();
"""

_COLUMNS = """
    seq bigint NOT NULL DEFAULT nextval('event_seq'),
    did text NOT NULL, collection text NOT NULL, rkey text NOT NULL, rev text NOT NULL, action text NOT NULL,
    cid text, record jsonb, source text NOT NULL, source_seq bigint,
    received_at timestamptz NOT NULL DEFAULT now(), verified boolean NOT NULL, rejected text
"""

# Creates partitions [top, top + size) until the highest bound is more than half a partition above
# `upto`. A seq far beyond the last bound (a sequence set by hand) is bridged by one partition, never
# by thousands. Partitions are made as plain tables and then attached: ATTACH takes only a SHARE UPDATE
# EXCLUSIVE lock on record_event (readers and the appender go on), CREATE … PARTITION OF would take
# ACCESS EXCLUSIVE. Returns the highest bound.
_ENSURE = r"""
CREATE OR REPLACE FUNCTION record_event_ensure_partitions(upto bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    size_ bigint := coalesce((SELECT partition_size FROM log_retention), 10000000);
    top_ bigint;
    hi_ bigint;
    name_ text;
BEGIN
    LOOP
        SELECT coalesce(max(hi), 0) INTO top_ FROM log_partition;
        EXIT WHEN top_ > upto + size_ / 2;
        hi_ := CASE WHEN upto - top_ > 1000 * size_ THEN upto + 1 ELSE top_ + size_ END;
        name_ := 'record_event_p' || top_;
        EXECUTE format('CREATE TABLE %I (LIKE record_event INCLUDING DEFAULTS)', name_);
        EXECUTE format('ALTER TABLE record_event ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       name_, top_, hi_);
    END LOOP;
    RETURN top_;
END $$
"""


def upgrade() -> None:
    # Nothing may append while the rows move. Stop the old ingester first: its append predates record_event_key.
    op.execute("LOCK TABLE record_event IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE record_event RENAME TO record_event_old")
    op.execute("ALTER TABLE record_event_old RENAME CONSTRAINT record_event_pkey TO record_event_old_pkey")
    for index in ("record_event_dedup_verified", "record_event_dedup_unverified", "record_event_did_seq"):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_old")
    op.execute(f"CREATE TABLE record_event ({_COLUMNS}) PARTITION BY RANGE (seq)")
    op.execute("""CREATE TABLE record_event_key (
        did text NOT NULL, collection text NOT NULL, rkey text NOT NULL, rev text NOT NULL, action text NOT NULL,
        verified boolean NOT NULL, seq bigint NOT NULL,
        CONSTRAINT record_event_key_pkey PRIMARY KEY (did, collection, rkey, rev, action, verified))""")
    op.execute(_PARTITIONS)
    op.execute(_TRUNCATE_KEYS)
    op.execute(f"ALTER TABLE log_retention ADD COLUMN partition_size bigint NOT NULL"
               f" DEFAULT {DEFAULT_PARTITION_SIZE} CHECK (partition_size > 0)")
    op.execute(_ENSURE)
    op.execute("SELECT record_event_ensure_partitions(greatest((SELECT last_value FROM event_seq),"
               " (SELECT coalesce(max(seq), 0) FROM record_event_old)))")
    cols = ("seq, did, collection, rkey, rev, action, cid, record, source, source_seq, received_at,"
            " verified, rejected")
    op.execute(f"INSERT INTO record_event ({cols}) SELECT {cols} FROM record_event_old")
    op.execute("INSERT INTO record_event_key (did, collection, rkey, rev, action, verified, seq)"
               " SELECT did, collection, rkey, rev, action, verified, seq FROM record_event_old")
    # Indexes after the rows (one sort per partition instead of row-by-row maintenance).
    op.execute("ALTER TABLE record_event ADD CONSTRAINT record_event_pkey PRIMARY KEY (seq)")
    op.execute("CREATE INDEX record_event_did_seq ON record_event (did, seq)")
    op.execute("DROP TABLE record_event_old")
    op.execute("ANALYZE record_event")
    op.execute("ANALYZE record_event_key")


def downgrade() -> None:
    op.execute("LOCK TABLE record_event IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE record_event RENAME TO record_event_parted")
    op.execute("ALTER TABLE record_event_parted RENAME CONSTRAINT record_event_pkey TO record_event_parted_pkey")
    op.execute("ALTER INDEX record_event_did_seq RENAME TO record_event_did_seq_parted")
    op.execute(f"CREATE TABLE record_event ({_COLUMNS}, CONSTRAINT record_event_pkey PRIMARY KEY (seq))")
    op.execute("INSERT INTO record_event SELECT * FROM record_event_parted")
    for name, where in (("record_event_dedup_verified", "verified"), ("record_event_dedup_unverified", "NOT verified")):
        op.execute(f"CREATE UNIQUE INDEX {name} ON record_event (did, collection, rkey, rev, action) WHERE {where}")
    op.execute("CREATE INDEX record_event_did_seq ON record_event (did, seq)")
    op.execute("DROP VIEW log_partition")
    op.execute("DROP TABLE record_event_parted")  # its partitions and the truncate trigger go with it
    op.execute("DROP FUNCTION record_event_truncate_keys()")
    op.execute("DROP FUNCTION record_event_ensure_partitions(bigint)")
    op.execute("DROP TABLE record_event_key")
    op.execute("ALTER TABLE log_retention DROP COLUMN partition_size")
