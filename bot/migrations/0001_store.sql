-- The sentence store: index versions, a pointer to the current one, and each version's
-- articles, passages, sentences (with their vectors) and word postings.
--
-- Every per-version table is partitioned by version: a build writes fresh partitions and builds
-- their indexes once, in bulk, after COPY; dropping a version drops its partitions. The vector
-- column has no fixed dimension (the model decides it): each version's partition gets its own
-- HNSW index on `embedding::vector(<dimension>)` (see bot/store_pg.py).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE index_versions (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    dimension integer NOT NULL CHECK (dimension > 0),
    sentences integer NOT NULL DEFAULT 0,
    manifest jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    ready boolean NOT NULL DEFAULT false  -- every row and index written
);

-- One row: the version every reader answers from, switched in one UPDATE.
CREATE TABLE current_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL REFERENCES index_versions (id),
    switched_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE articles (
    version integer NOT NULL,
    doc text NOT NULL,
    title text NOT NULL,
    paragraphs text[] NOT NULL,
    url text,
    published text,
    sha256 text NOT NULL,
    place text,
    agency text,
    PRIMARY KEY (version, doc)
) PARTITION BY LIST (version);

CREATE TABLE passages (
    version integer NOT NULL,
    id integer NOT NULL,  -- position in the passage list
    doc text NOT NULL,
    paragraph integer NOT NULL,
    first integer NOT NULL,
    last integer NOT NULL,
    PRIMARY KEY (version, id)
) PARTITION BY LIST (version);

CREATE TABLE sentences (
    version integer NOT NULL,
    id integer NOT NULL,  -- position in the sentence list (what the ranking calls a sentence id)
    doc text NOT NULL,
    paragraph integer NOT NULL,
    sentence integer NOT NULL,
    text text NOT NULL,
    passage integer NOT NULL,
    text_key text NOT NULL,  -- sha1 of the embedded text: a rebuild reuses the vector
    embedding vector NOT NULL,  -- unit length, so inner product = cosine
    term_count real NOT NULL,  -- distinct content words
    name_count real NOT NULL,  -- distinct names
    has_number boolean NOT NULL,
    has_time boolean NOT NULL,
    PRIMARY KEY (version, id)
) PARTITION BY LIST (version);

-- Word postings with their BM25 weights, as bot.words keeps them in memory (bm25s's weights),
-- so the database's BM25 is the same number the embedded store computes.
-- kind: 's' sentence terms, 'p' passage terms, 'n' names (weight 1).
CREATE TABLE postings (
    version integer NOT NULL,
    kind "char" NOT NULL CHECK (kind IN ('s', 'p', 'n')),
    term text NOT NULL,
    doc integer NOT NULL,  -- sentence or passage id
    weight real NOT NULL
) PARTITION BY LIST (version);
