DROP INDEX ledger_entries_grant_type;
