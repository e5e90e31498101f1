-- The newest ledger checkpoint this connector cosigned as a witness (one row).
-- A witness only cosigns checkpoints that extend it, so a restart cannot be
-- talked into a smaller or different tree. `conflict` holds the signed note of
-- a checkpoint the ledger served that did not extend it: evidence, and the
-- witness cosigns nothing while it is set.
CREATE TABLE witnessed_checkpoint (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    tree_size  BIGINT  NOT NULL CHECK (tree_size >= 0),
    root       BYTEA   NOT NULL,
    updated_at BIGINT  NOT NULL,
    conflict   TEXT
);
