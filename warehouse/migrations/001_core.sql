-- Core tables of the nightly ingest. Names in the warehouse contract (articles,
-- article_themes, runs, fetch_errors) are kept stable for other tools.

CREATE TABLE feeds (
    url                 VARCHAR PRIMARY KEY,   -- as configured
    name                VARCHAR,
    etag                VARCHAR,
    last_modified       VARCHAR,
    body_sha256         VARCHAR,               -- hash of the last feed body parsed
    last_polled_at      TIMESTAMPTZ,
    last_status         INTEGER,
    last_full_fetch_at  TIMESTAMPTZ,           -- last 200 answer (not 304)
    last_new_entry_at   TIMESTAMPTZ,           -- last time the feed brought an unseen article
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error          VARCHAR
);

CREATE TABLE articles (
    id              VARCHAR PRIMARY KEY,       -- first 16 hex digits of sha256(canonical url)
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
    content_hash    VARCHAR NOT NULL,          -- sha256 of normalised text: one story under two URLs is stored once
    run_id          VARCHAR
);
CREATE UNIQUE INDEX articles_content_hash ON articles (content_hash);

-- Every URL (canonical, alias, GUID link) that is known to lead to a stored article, so an
-- article already stored is never fetched again.
CREATE TABLE article_urls (
    url         VARCHAR PRIMARY KEY,
    article_id  VARCHAR NOT NULL
);

-- Raw HTML, zstd-compressed, for `newsmon reextract`.
CREATE TABLE pages (
    article_id    VARCHAR PRIMARY KEY,
    url           VARCHAR NOT NULL,            -- final URL after redirects
    status        INTEGER,
    content_type  VARCHAR,
    html_zstd     BLOB,
    fetched_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE article_themes (
    article_id      VARCHAR NOT NULL,
    url             VARCHAR NOT NULL,
    theme           VARCHAR NOT NULL,
    score           DOUBLE NOT NULL,
    evidence        VARCHAR,
    themes_version  VARCHAR NOT NULL,
    PRIMARY KEY (article_id, theme)
);

CREATE TABLE article_entities (
    article_id  VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,              -- canonical name from seeds/entities.toml
    kind        VARCHAR NOT NULL,              -- model | organisation | ...
    mentions    INTEGER NOT NULL,
    PRIMARY KEY (article_id, entity)
);

CREATE TABLE runs (
    run_id              VARCHAR PRIMARY KEY,
    flow_run_id         VARCHAR,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ,           -- NULL: the run is still going or was killed
    status              VARCHAR NOT NULL,      -- running | completed | failed
    feeds_ok            INTEGER NOT NULL DEFAULT 0,
    feeds_not_modified  INTEGER NOT NULL DEFAULT 0,
    feeds_failed        INTEGER NOT NULL DEFAULT 0,
    articles_new        INTEGER NOT NULL DEFAULT 0,
    articles_duplicate  INTEGER NOT NULL DEFAULT 0,
    articles_failed     INTEGER NOT NULL DEFAULT 0,
    articles_fallback   INTEGER NOT NULL DEFAULT 0, -- stored from feed content because the page failed
    error               VARCHAR
);

CREATE TABLE fetch_errors (
    run_id      VARCHAR,
    occurred_at TIMESTAMPTZ NOT NULL,
    url         VARCHAR NOT NULL,
    feed_url    VARCHAR,
    stage       VARCHAR NOT NULL,              -- feed | parse | robots | page | extract | store
    error       VARCHAR NOT NULL
);
