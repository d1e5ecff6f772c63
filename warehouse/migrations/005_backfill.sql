-- Progress of `newsmon backfill`, so an interrupted backfill resumes where it stopped
-- instead of walking the sitemaps and fetching the pages again.

-- One row per site whose sitemaps were read.
CREATE TABLE backfill_sites (
    site           VARCHAR PRIMARY KEY,        -- scheme://host[:port]
    since          DATE NOT NULL,              -- the earliest date asked for when it was read
    discovered_at  TIMESTAMPTZ NOT NULL,
    sitemaps       INTEGER NOT NULL,           -- sitemap documents read
    urls           INTEGER NOT NULL            -- article URLs found (before filtering)
);

-- Every candidate article URL and what became of it.
CREATE TABLE backfill_urls (
    url            VARCHAR PRIMARY KEY,        -- canonical URL
    site           VARCHAR NOT NULL,
    lastmod        TIMESTAMPTZ,                -- from the sitemap, when it gives one
    status         VARCHAR NOT NULL,           -- pending | stored | duplicate | known | old | irrelevant | failed
    detail         VARCHAR,                    -- why it was skipped or failed
    article_id     VARCHAR,
    discovered_at  TIMESTAMPTZ NOT NULL,
    done_at        TIMESTAMPTZ
);
