-- Leaves of the log: the canonical signed entry, its RFC 9162 leaf hash, and the
-- fields regulators query by. Entries hold pseudonyms only; no health data.
CREATE TABLE ledger_entries (
    idx          BIGINT  NOT NULL PRIMARY KEY,
    leaf_hash    BLOB    NOT NULL UNIQUE,
    body         TEXT    NOT NULL,
    entry_type   TEXT    NOT NULL,
    submitter    TEXT    NOT NULL,
    subject      TEXT,
    grant_id     TEXT,
    entry_time   BIGINT  NOT NULL,
    sequenced_at BIGINT  NOT NULL
);
CREATE INDEX ledger_entries_type ON ledger_entries (entry_type, idx);
CREATE INDEX ledger_entries_submitter ON ledger_entries (submitter, idx);
CREATE INDEX ledger_entries_subject ON ledger_entries (subject, idx) WHERE subject IS NOT NULL;
CREATE INDEX ledger_entries_grant ON ledger_entries (grant_id, idx) WHERE grant_id IS NOT NULL;
CREATE INDEX ledger_entries_time ON ledger_entries (entry_time, idx);

-- Every complete (perfect) subtree: level L, index i covers leaves [i*2^L, (i+1)*2^L).
-- Any proof or root is O(log n) reads of these rows; hash tiles are ranges of them.
CREATE TABLE ledger_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT   NOT NULL,
    hash  BLOB     NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Checkpoints the sequencer signed. The newest is the guard that a restarted
-- sequencer checks before it signs anything else.
CREATE TABLE ledger_checkpoints (
    tree_size BIGINT NOT NULL PRIMARY KEY,
    root      BLOB   NOT NULL,
    note      TEXT   NOT NULL,
    signed_at BIGINT NOT NULL
);
