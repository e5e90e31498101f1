-- Acts the consent service has validated and reserved but not yet finished:
-- each holds the exact signed ledger entries it logs and the change it then
-- applies. The key is the thing the act is about (a request, a grant, a rule,
-- a device), so two acts on one thing cannot both be under way; a restart
-- finishes or undoes every act left here, so the ledger and these tables agree.
CREATE TABLE pending_acts (
    act_key    TEXT   NOT NULL PRIMARY KEY,
    act        TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- Who issued the code a device was enrolled with (the desk's word is trusted,
-- so it is named on the ledger and audited).
ALTER TABLE devices ADD COLUMN code_issuer TEXT NOT NULL DEFAULT '';
