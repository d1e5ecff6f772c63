-- The large tables without ART indexes (primary keys and the unique content-hash index).
--
-- DuckDB keeps a PRIMARY KEY or UNIQUE constraint as an ART index that it must load in full
-- to append a single row and re-serialise at every checkpoint: on a 200,000-article file an
-- append of 100 articles took about 2 s, and bulk loads ran at half the unindexed speed. The
-- indexes only sped up single-row lookups (`WHERE url = ?`: 1 ms against 16 ms on 250,000
-- articles), which newsmon does not run; its lookups are joins and IN-lists, which DuckDB
-- answers by scanning the column with or without an index. Migrating a 200,000-article file
-- took 11 s; the file keeps its size, and later writes reuse the freed blocks.
-- Uniqueness is now enforced by the only writer (newsmon/writer_lock.py guarantees one):
-- warehouse.store and warehouse.bulk check every staged key against the batch itself and the
-- stored rows inside their write transaction (warehouse/keys.py), with the same outcome the
-- constraints gave: duplicates become aliases, or the batch fails with a ConstraintException.
--
-- DuckDB cannot drop a primary key with ALTER TABLE, so each table is rebuilt under a new
-- name, copied in insertion order, dropped and renamed; this whole file runs in one
-- transaction. The views of 003 name the tables and bind at query time, so they read the new
-- tables unchanged.

CREATE TABLE articles_rebuilt (
    id              VARCHAR NOT NULL,          -- first 16 hex digits of sha256(canonical url); unique
    url             VARCHAR NOT NULL,          -- canonical URL
    title           VARCHAR,
    source          VARCHAR,                   -- site name from the page, else the feed's name
    published_at    TIMESTAMPTZ,               -- best known publication time (see date_source)
    date_source     VARCHAR NOT NULL,          -- feed | page | url | first_seen
    fetched_at      TIMESTAMPTZ NOT NULL,
    language        VARCHAR,
    author          VARCHAR,
    text            VARCHAR,
    text_source     VARCHAR NOT NULL,          -- page | feed (page failed or had no text)
    relevant        BOOLEAN,
    relevance       DOUBLE,
    themes_version  VARCHAR,
    feed_url        VARCHAR,
    guid            VARCHAR,
    summary         VARCHAR,
    content_hash    VARCHAR NOT NULL,          -- sha256 of normalised text; unique
    run_id          VARCHAR
);
INSERT INTO articles_rebuilt SELECT * FROM articles;
DROP TABLE articles;
ALTER TABLE articles_rebuilt RENAME TO articles;

CREATE TABLE article_urls_rebuilt (
    url         VARCHAR NOT NULL,              -- unique
    article_id  VARCHAR NOT NULL
);
INSERT INTO article_urls_rebuilt SELECT * FROM article_urls;
DROP TABLE article_urls;
ALTER TABLE article_urls_rebuilt RENAME TO article_urls;

CREATE TABLE pages_rebuilt (
    article_id    VARCHAR NOT NULL,            -- unique
    url           VARCHAR NOT NULL,            -- final URL after redirects
    status        INTEGER,
    content_type  VARCHAR,
    html_zstd     BLOB,
    fetched_at    TIMESTAMPTZ NOT NULL
);
INSERT INTO pages_rebuilt SELECT * FROM pages;
DROP TABLE pages;
ALTER TABLE pages_rebuilt RENAME TO pages;

CREATE TABLE article_themes_rebuilt (
    article_id      VARCHAR NOT NULL,          -- (article_id, theme) unique
    url             VARCHAR NOT NULL,
    theme           VARCHAR NOT NULL,
    score           DOUBLE NOT NULL,
    evidence        VARCHAR,
    themes_version  VARCHAR NOT NULL
);
INSERT INTO article_themes_rebuilt SELECT * FROM article_themes;
DROP TABLE article_themes;
ALTER TABLE article_themes_rebuilt RENAME TO article_themes;

CREATE TABLE article_entities_rebuilt (
    article_id  VARCHAR NOT NULL,              -- (article_id, entity) unique
    entity      VARCHAR NOT NULL,              -- canonical name from seeds/entities.toml
    kind        VARCHAR NOT NULL,              -- model | organisation | ...
    mentions    INTEGER NOT NULL
);
INSERT INTO article_entities_rebuilt SELECT * FROM article_entities;
DROP TABLE article_entities;
ALTER TABLE article_entities_rebuilt RENAME TO article_entities;
