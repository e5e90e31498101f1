-- The hashed index: sealed pointers under pseudonymous patient keys. The index
-- cannot open a pointer; it matches scope tags, never categories or codes.
CREATE TABLE pointers (
    pointer_id    TEXT   NOT NULL PRIMARY KEY,
    patient_key   TEXT   NOT NULL,
    custodian     TEXT   NOT NULL,
    sealed        BLOB   NOT NULL,
    published_at  BIGINT NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('active', 'superseded', 'withdrawn')),
    superseded_by TEXT
);
CREATE INDEX pointers_patient ON pointers (patient_key, status);
CREATE INDEX pointers_custodian ON pointers (custodian);

-- One row per scope tag of a pointer: discovery is an index lookup by tag.
CREATE TABLE pointer_tags (
    scope_tag  TEXT NOT NULL,
    pointer_id TEXT NOT NULL REFERENCES pointers (pointer_id),
    PRIMARY KEY (scope_tag, pointer_id)
);
CREATE INDEX pointer_tags_pointer ON pointer_tags (pointer_id);
