-- The documented views: the public query surface of the warehouse (see docs/warehouse.md).
-- Weeks and days are computed at query time in the session TimeZone, which
-- warehouse.db.connect sets from settings.trends.timezone; nothing here stores a week, so
-- changing the timezone needs no rewrite of stored rows.

-- Words that never make an emerging term on their own and never start or end a phrase.
CREATE TABLE term_stop_words (
    word VARCHAR PRIMARY KEY
);
INSERT INTO term_stop_words SELECT unnest([
    'a', 'about', 'above', 'after', 'again', 'against', 'all', 'almost', 'also', 'am', 'among',
    'an', 'and', 'another', 'any', 'are', 'as', 'at', 'back', 'be', 'because', 'been', 'before',
    'being', 'below', 'best', 'better', 'between', 'big', 'both', 'but', 'by', 'can', 'could',
    'did', 'do', 'does', 'doing', 'done', 'down', 'during', 'each', 'even', 'ever', 'every',
    'few', 'first', 'for', 'from', 'further', 'get', 'gets', 'getting', 'give', 'go', 'goes',
    'going', 'good', 'got', 'great', 'had', 'has', 'have', 'having', 'he', 'her', 'here', 'hers',
    'him', 'his', 'how', 'however', 'i', 'if', 'in', 'into', 'is', 'it', 'its', 'itself', 'just',
    'last', 'latest', 'less', 'let', 'like', 'made', 'make', 'makes', 'making', 'many', 'may',
    'me', 'might', 'more', 'most', 'much', 'must', 'my', 'need', 'needs', 'never', 'new', 'next',
    'no', 'nor', 'not', 'now', 'of', 'off', 'on', 'once', 'one', 'only', 'or', 'other', 'our',
    'ours', 'out', 'over', 'own', 'part', 'per', 'really', 'report', 'reports', 'said', 'same',
    'say', 'says', 'see', 'she', 'should', 'show', 'shows', 'since', 'so', 'some', 'still',
    'such', 'take', 'takes', 'than', 'that', 'the', 'their', 'theirs', 'them', 'then', 'there',
    'these', 'they', 'this', 'those', 'through', 'to', 'today', 'too', 'top', 'two', 'under',
    'until', 'up', 'upon', 'us', 'use', 'used', 'uses', 'using', 'very', 'via', 'vs', 'want',
    'wants', 'was', 'way', 'ways', 'we', 'week', 'well', 'were', 'what', 'when', 'where',
    'whether', 'which', 'while', 'who', 'whom', 'why', 'will', 'with', 'within', 'without',
    'would', 'year', 'years', 'yet', 'you', 'your', 'yours', 'yourself'
]);

-- Key phrases of the current themes, normalised with key_phrase_text; refreshed by
-- warehouse.queries.refresh_theme_phrases whenever the themes file is loaded for writing.
CREATE TABLE theme_key_phrases (
    theme   VARCHAR NOT NULL,
    phrase  VARCHAR NOT NULL,
    PRIMARY KEY (theme, phrase)
);

-- Tokens of a title: lower case, letters and digits, keeping inner dots, dashes and pluses so
-- model names such as llama-3.1, gpt-4o and c++ survive as one token.
CREATE MACRO term_tokens(s) AS
    regexp_extract_all(lower(coalesce(s, '')), '[\pL\pN][\pL\pN._+-]*[\pL\pN+]|[\pL\pN]');

-- One normalised form for phrases and terms, so both sides of a comparison agree.
CREATE MACRO term_text(s) AS array_to_string(term_tokens(s), ' ');

-- A theme key phrase as stored: normalised, keeping a trailing '*' (a prefix pattern such as
-- 'price war*', which the tagger reads as "any word starting with").
CREATE MACRO key_phrase_text(s) AS
    term_text(s) || CASE WHEN rtrim(coalesce(s, '')) LIKE '%*' AND term_text(s) <> '' THEN '*' ELSE '' END;

-- Whether a key phrase covers a term: the phrase contains the term or the term contains the
-- phrase, as whole words with dashes read as spaces; a phrase ending in '*' may end inside a
-- word of the term.
CREATE MACRO key_phrase_covers(phrase, term) AS
    contains(' ' || replace(rtrim(phrase, '*'), '-', ' ') || ' ', ' ' || replace(term, '-', ' ') || ' ')
    OR CASE WHEN phrase LIKE '%*'
            THEN contains(' ' || replace(term, '-', ' '), ' ' || replace(rtrim(phrase, '*'), '-', ' '))
            ELSE contains(' ' || replace(term, '-', ' ') || ' ', ' ' || replace(phrase, '-', ' ') || ' ')
       END;

-- True when an article's published date is plausible enough for trends: present, not merely
-- the first time a feed showed it, not more than a day after the fetch, not before 1995.
-- Epoch arithmetic, not INTERVAL arithmetic: adding an interval to a TIMESTAMPTZ is a
-- calendar operation in the session timezone and costs a microsecond a row.
CREATE MACRO published_plausible(published_at, date_source, fetched_at) AS
    published_at IS NOT NULL
    AND date_source IS DISTINCT FROM 'first_seen'
    AND epoch_us(published_at) <= epoch_us(fetched_at) + 86400000000
    AND published_at >= TIMESTAMPTZ '1995-01-01 00:00:00+00';

-- Every article with the date trends use (article_date: the published date when plausible,
-- else the fetch time; date_basis says which) and its day, ISO week (Monday) and ISO week
-- label in the session timezone.
-- Converting each timestamp to local time through the timezone library is the slow part of
-- every trend view, so the UTC offset is computed once per UTC day between the first and the
-- last article (about 1,100 for three years), kept in one list indexed by day, and added with
-- integer arithmetic; a day whose offset changes (a daylight-saving switch) has no entry, and
-- its rows take the library's own conversion.
CREATE VIEW articles_dated AS
WITH dated AS (
    SELECT a.*,
           CASE WHEN published_plausible(a.published_at, a.date_source, a.fetched_at)
                THEN a.published_at ELSE a.fetched_at END AS article_date,
           CASE WHEN published_plausible(a.published_at, a.date_source, a.fetched_at)
                THEN 'published' ELSE 'fetched' END AS date_basis
    FROM articles a
), bounds AS (
    -- A scan of its own, so the wide article rows are not materialised for the lookup.
    SELECT min(utc_day) AS first_day, max(utc_day) AS last_day FROM (
        SELECT epoch_us(CASE WHEN published_plausible(published_at, date_source, fetched_at)
                             THEN published_at ELSE fetched_at END) // 86400000000 AS utc_day
        FROM articles
    )
), day_offsets AS (
    SELECT any_value(first_day) AS first_day,
           list(CASE WHEN offset_start = offset_end THEN offset_start END ORDER BY utc_day) AS offsets
    FROM (
        SELECT first_day, utc_day,
               epoch_us(CAST(make_timestamptz(utc_day * 86400000000) AS TIMESTAMP))
                   - utc_day * 86400000000 AS offset_start,
               epoch_us(CAST(make_timestamptz(utc_day * 86400000000 + 86399999999) AS TIMESTAMP))
                   - (utc_day * 86400000000 + 86399999999) AS offset_end
        FROM bounds, range(first_day, last_day + 1) AS days(utc_day)
    )
), localised AS (
    SELECT d.*,
           coalesce(
               CAST(make_timestamp(epoch_us(d.article_date)
                    + o.offsets[epoch_us(d.article_date) // 86400000000 - o.first_day + 1]) AS DATE),
               CAST(d.article_date AS DATE)) AS day
    FROM dated d CROSS JOIN day_offsets o
)
SELECT *,
       day - CAST(isodow(day) - 1 AS INTEGER) AS week,
       isoyear(day)::VARCHAR || '-W' || lpad(week(day)::VARCHAR, 2, '0') AS iso_week
FROM localised;

-- The ISO week label of a date, e.g. '2026-W47' (the ISO year, so 2024-12-30 is 2025-W01).
-- Views label each week once after grouping: building a string per article costs more than
-- all the rest of a weekly count.
CREATE MACRO iso_week_label(d) AS
    isoyear(d)::VARCHAR || '-W' || lpad(week(d)::VARCHAR, 2, '0');

-- An article dated on or after local midnight of `since` was fetched at most a day before
-- its date: a plausible published date is at most a day ahead of the fetch. The bound is on
-- a stored column, so DuckDB skips older row groups without computing any date.
CREATE MACRO fetched_since(fetched_at, since) AS
    fetched_at >= CAST(CAST(since AS DATE) - 2 AS TIMESTAMPTZ);

-- The Monday of a date's ISO week.
CREATE MACRO week_monday(d) AS
    CAST(d AS DATE) - CAST(isodow(CAST(d AS DATE)) - 1 AS INTEGER);

-- Themes per ISO week over relevant articles, from the week of `since` on. Every theme that
-- was ever assigned has a row in every week that has relevant articles (articles = 0 when
-- none), so rises and falls to zero show without gaps.
CREATE MACRO theme_weekly_since(since) AS TABLE
WITH rel AS (
    SELECT id, week FROM articles_dated
    WHERE relevant IS TRUE AND fetched_since(fetched_at, week_monday(since))
      AND week >= week_monday(since)
), weeks AS (
    SELECT week, count(*) AS relevant_articles FROM rel GROUP BY week
), themes AS (
    SELECT DISTINCT theme FROM article_themes
), tagged AS (
    SELECT r.week, t.theme, count(*) AS articles
    FROM rel r JOIN article_themes t ON t.article_id = r.id
    GROUP BY r.week, t.theme
)
SELECT w.week, iso_week_label(w.week) AS iso_week, th.theme,
       coalesce(g.articles, 0)::BIGINT AS articles,
       w.relevant_articles::BIGINT AS relevant_articles,
       (coalesce(g.articles, 0) / w.relevant_articles)::DOUBLE AS share
FROM weeks w CROSS JOIN themes th
LEFT JOIN tagged g ON g.week = w.week AND g.theme = th.theme;

CREATE VIEW theme_weekly AS
SELECT * FROM theme_weekly_since(DATE '0001-01-01');

-- Themes per day over relevant articles, dense like theme_weekly.
CREATE VIEW theme_daily AS
WITH rel AS (
    SELECT id, day FROM articles_dated WHERE relevant IS TRUE
), days AS (
    SELECT day, count(*) AS relevant_articles FROM rel GROUP BY day
), themes AS (
    SELECT DISTINCT theme FROM article_themes
), tagged AS (
    SELECT r.day, t.theme, count(*) AS articles
    FROM rel r JOIN article_themes t ON t.article_id = r.id
    GROUP BY r.day, t.theme
)
SELECT d.day, th.theme,
       coalesce(g.articles, 0)::BIGINT AS articles,
       d.relevant_articles::BIGINT AS relevant_articles,
       (coalesce(g.articles, 0) / d.relevant_articles)::DOUBLE AS share
FROM days d CROSS JOIN themes th
LEFT JOIN tagged g ON g.day = d.day AND g.theme = th.theme;

-- Sources per ISO week: articles = relevant articles from the source, relevant_articles = all
-- relevant articles that week, share = their ratio; all_articles also counts the irrelevant
-- ones, so a source's signal-to-noise is one division away.
CREATE VIEW source_weekly AS
WITH per_source AS (
    SELECT week, coalesce(nullif(source, ''), feed_url, '(unknown)') AS source,
           count(*) FILTER (WHERE relevant IS TRUE) AS articles,
           count(*) AS all_articles
    FROM articles_dated
    GROUP BY ALL
), weeks AS (
    SELECT week, sum(articles) AS relevant_articles FROM per_source GROUP BY week
)
SELECT p.week, iso_week_label(p.week) AS iso_week, p.source,
       p.articles::BIGINT AS articles,
       w.relevant_articles::BIGINT AS relevant_articles,
       CASE WHEN w.relevant_articles > 0 THEN p.articles / w.relevant_articles ELSE 0.0 END::DOUBLE AS share,
       p.all_articles::BIGINT AS all_articles
FROM per_source p JOIN weeks w USING (week);

-- Entities per ISO week over relevant articles: how many articles name each, and how often.
CREATE VIEW entity_weekly AS
WITH counted AS (
    SELECT a.week, e.entity, e.kind, count(*) AS articles, sum(e.mentions) AS mentions
    FROM articles_dated a JOIN article_entities e ON e.article_id = a.id
    WHERE a.relevant IS TRUE
    GROUP BY ALL
)
SELECT week, iso_week_label(week) AS iso_week, entity, kind,
       articles::BIGINT AS articles, mentions::BIGINT AS mentions
FROM counted;

-- Words and 2-3 word phrases of relevant titles whose article count in the week starting
-- week_start jumped against the average of the four weeks before. ratio is smoothed
-- (this_week / (prior_weekly_avg + 1)) so a brand-new term ranks by how often it appears.
-- A term that a theme key phrase covers (either contains the other, dashes read as spaces) is
-- left out, and so is a term that mostly appears inside a longer emerging phrase.
-- Terms are counted for the week itself first; the four weeks before are counted only for
-- the few terms that pass, which keeps the big aggregate small.
CREATE MACRO emerging_terms_at(week_start, min_articles := 3, min_ratio := 2.0) AS TABLE
WITH docs AS (
    SELECT id, week, term_tokens(title) AS w
    FROM articles_dated
    WHERE relevant IS TRUE
      AND fetched_since(fetched_at, CAST(week_start AS DATE) - 28)
      AND week >= CAST(week_start AS DATE) - 28
      AND week <= CAST(week_start AS DATE)
), grams AS (
    -- Each n-gram with its first and last token; the unnests of one SELECT run in step.
    SELECT id, week, unnest(w) AS term, unnest(w) AS first_token, unnest(w) AS last_token, 1 AS n
    FROM docs
    UNION ALL
    SELECT id, week, unnest(list_transform(range(1, len(w)), lambda i: w[i] || ' ' || w[i + 1])),
           unnest(w[1:-2]), unnest(w[2:]), 2
    FROM docs
    UNION ALL
    SELECT id, week,
           unnest(list_transform(range(1, len(w) - 1), lambda i: w[i] || ' ' || w[i + 1] || ' ' || w[i + 2])),
           unnest(w[1:-3]), unnest(w[3:]), 3
    FROM docs
), terms AS (
    SELECT id, week, term FROM grams
    WHERE first_token NOT IN (SELECT word FROM term_stop_words)
      AND last_token NOT IN (SELECT word FROM term_stop_words)
      AND NOT regexp_full_match(first_token, '[\pN._+-]+')
      AND (n > 1 OR length(first_token) >= 3 OR regexp_matches(first_token, '\pN'))
), current_week AS (
    SELECT * FROM (
        SELECT term, count(DISTINCT id) AS this_week
        FROM terms WHERE week = CAST(week_start AS DATE)
        GROUP BY term
    ) WHERE this_week >= min_articles
), prior_weeks AS (
    SELECT t.term, count(DISTINCT t.id) / 4.0 AS prior_weekly_avg
    FROM terms t SEMI JOIN current_week c ON c.term = t.term
    WHERE t.week < CAST(week_start AS DATE)
    GROUP BY t.term
), jumped AS (
    SELECT c.term, c.this_week, coalesce(p.prior_weekly_avg, 0.0) AS prior_weekly_avg,
           c.this_week / (coalesce(p.prior_weekly_avg, 0.0) + 1.0) AS ratio
    FROM current_week c LEFT JOIN prior_weeks p USING (term)
    WHERE c.this_week / (coalesce(p.prior_weekly_avg, 0.0) + 1.0) >= min_ratio
), uncovered AS (
    SELECT j.* FROM jumped j
    WHERE NOT EXISTS (
        SELECT 1 FROM theme_key_phrases k WHERE key_phrase_covers(k.phrase, j.term)
    )
)
SELECT CAST(week_start AS DATE) AS week,
       iso_week_label(CAST(week_start AS DATE)) AS iso_week,
       u.term, u.this_week::BIGINT AS this_week, u.prior_weekly_avg::DOUBLE AS prior_weekly_avg,
       u.ratio::DOUBLE AS ratio
FROM uncovered u
WHERE NOT EXISTS (
    SELECT 1 FROM uncovered longer
    WHERE length(longer.term) > length(u.term)
      AND contains(' ' || longer.term || ' ', ' ' || u.term || ' ')
      AND longer.this_week >= 0.8 * u.this_week
);

-- The Monday of the latest ISO week that has relevant articles. Weeks rise with dates, so
-- this is the week of the latest date: one scan, one timezone conversion.
CREATE MACRO latest_trend_week() AS (
    SELECT week_monday(CAST(max(CASE WHEN published_plausible(published_at, date_source, fetched_at)
                                     THEN published_at ELSE fetched_at END) AS DATE))
    FROM articles WHERE relevant IS TRUE
);

-- Emerging terms of the latest week that has relevant articles.
CREATE VIEW emerging_terms AS
SELECT * FROM emerging_terms_at(latest_trend_week());
