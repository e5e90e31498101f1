-- Revocation checks ask "is there a grant.revoked entry for this grant?": one
-- index probe, however many entries the grant already has.
CREATE INDEX ledger_entries_grant_type ON ledger_entries (grant_id, entry_type, idx) WHERE grant_id IS NOT NULL;
