ALTER TABLE records ADD COLUMN lease_until INTEGER;
