-- Every attempt to send a weekly digest to one recipient: one row per attempt, so the log
-- shows failures and their retries. A (week, recipient) with a `sent` row is not sent again
-- unless forced; one with only `failed` rows is retried by the next run.
CREATE TABLE digests (
    week          VARCHAR NOT NULL,            -- ISO week, e.g. 2026-W47
    recipient     VARCHAR NOT NULL,            -- address as configured
    status        VARCHAR NOT NULL,            -- sent | failed
    attempted_at  TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ,                 -- when the server accepted it (sent only)
    error         VARCHAR,                     -- why it failed (failed only)
    message_id    VARCHAR                      -- Message-ID header of the message sent
);
CREATE INDEX digests_week ON digests (week, recipient);
