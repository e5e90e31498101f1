-- The consent service keeps pseudonymous patient keys, device public keys,
-- requests, grants and rules: never names or identifiers.

-- One-time codes a hospital's desk hands a patient to enrol a phone. Only a
-- hash of the code is kept; it is shown once.
CREATE TABLE enrolment_codes (
    code_hash   BYTEA  NOT NULL PRIMARY KEY,
    patient_key TEXT   NOT NULL,
    issued_by   TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- A patient's devices: public keys only (JWK), named by their RFC 7638 thumbprint.
CREATE TABLE devices (
    device_id   TEXT   NOT NULL PRIMARY KEY,
    patient_key TEXT   NOT NULL,
    public_jwk  TEXT   NOT NULL,
    enrolled_at BIGINT NOT NULL,
    removed_at  BIGINT
);
CREATE INDEX devices_patient ON devices (patient_key);

-- Sign-in challenges, single use and short-lived.
CREATE TABLE challenges (
    nonce      TEXT   NOT NULL PRIMARY KEY,
    device_id  TEXT   NOT NULL REFERENCES devices (device_id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE access_requests (
    request_id  TEXT   NOT NULL PRIMARY KEY,
    patient_key TEXT   NOT NULL,
    requester   TEXT   NOT NULL,
    terms       TEXT   NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    grant_id    TEXT
);
CREATE INDEX access_requests_patient ON access_requests (patient_key, status, created_at);

CREATE TABLE grants (
    grant_id    TEXT    NOT NULL PRIMARY KEY,
    patient_key TEXT    NOT NULL,
    requester   TEXT    NOT NULL,
    basis       TEXT    NOT NULL CHECK (basis IN ('patient_approval', 'standing_rule', 'emergency')),
    token       TEXT    NOT NULL,
    claims      TEXT    NOT NULL,
    issued_at   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX grants_patient ON grants (patient_key, issued_at);

-- Standing rules the patient signed ahead of time.
CREATE TABLE rules (
    rule_id     TEXT   NOT NULL PRIMARY KEY,
    patient_key TEXT   NOT NULL,
    rule        TEXT   NOT NULL,
    signature   TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX rules_patient ON rules (patient_key);
