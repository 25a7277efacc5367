-- Token vectors per sentence (bot/tokens.py): int8 codes then float16 scales, packed; NULL where
-- the model has no token projection. Every version's partition gets the column.
ALTER TABLE sentences ADD COLUMN tokens bytea;
