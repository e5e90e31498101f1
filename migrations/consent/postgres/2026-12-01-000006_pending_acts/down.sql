ALTER TABLE devices DROP COLUMN code_issuer;
DROP TABLE pending_acts;
