-- The hospital's own records: one row per version of a FHIR resource. Rows name the
-- patient by pseudonymous key only; names and identifiers exist only inside
-- `content`, the hospital's own copy, which leaves only through a logged retrieval.
CREATE TABLE records (
    resource_type     TEXT    NOT NULL,
    resource_id       TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    patient_key       TEXT    NOT NULL,
    -- JSON arrays of tokens: categories `code` or `system|code`, codes `system|code`.
    categories        TEXT    NOT NULL,
    codes             TEXT    NOT NULL,
    -- YYYY-MM-DD, or NULL when the resource has no full effective date.
    effective_date    TEXT,
    -- The resource's original JSON text without insignificant whitespace; the
    -- commitment is over exactly these bytes.
    content           TEXT    NOT NULL,
    salt              BYTEA   NOT NULL,
    commitment        BYTEA   NOT NULL,
    imported_at       BIGINT  NOT NULL,
    published_pointer TEXT,
    "current"         BOOLEAN NOT NULL,
    PRIMARY KEY (resource_type, resource_id, version)
);
-- At most one current version per resource, whatever the writer does.
CREATE UNIQUE INDEX records_one_current ON records (resource_type, resource_id) WHERE "current";
CREATE INDEX records_patient ON records (patient_key, resource_type, resource_id) WHERE "current";
CREATE INDEX records_unpublished ON records (imported_at, resource_type, resource_id)
    WHERE "current" AND published_pointer IS NULL;
CREATE UNIQUE INDEX records_pointer ON records (published_pointer) WHERE published_pointer IS NOT NULL;

-- Results fetched from other hospitals (the requester side), each with the
-- custodian's signed provenance and the ledger receipt of its retrieval.
CREATE TABLE received_results (
    id            TEXT    NOT NULL PRIMARY KEY,
    patient_key   TEXT    NOT NULL,
    custodian     TEXT    NOT NULL,
    pointer_id    TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    content       TEXT    NOT NULL,
    commitment    BYTEA   NOT NULL,
    provenance    TEXT    NOT NULL,
    receipt_index BIGINT  NOT NULL,
    received_at   BIGINT  NOT NULL,
    UNIQUE (pointer_id, receipt_index)
);
CREATE INDEX received_results_patient ON received_results (patient_key, received_at, receipt_index);
