-- Witnesses' cosignatures (C2SP tlog-cosignature) of signed checkpoints, one per
-- witness and checkpoint. They are served as extra signature lines of the
-- checkpoint's note; `signature_line` is the line exactly as served.
CREATE TABLE ledger_cosignatures (
    tree_size      BIGINT NOT NULL REFERENCES ledger_checkpoints (tree_size),
    witness        TEXT   NOT NULL,
    timestamp      BIGINT NOT NULL,
    signature_line TEXT   NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
