SELECT
  "t10"."person",
  "t10"."person" || '#' || CAST("t10"."session_index" AS TEXT) AS "session_id",
  "t10"."session_index",
  "t10"."timestamp" AS "session_start",
  COALESCE("t10"."tp_next_prev", "t10"."tp_last") AS "session_end",
  COALESCE("t10"."tp_next_rn", "t10"."tp_n") - "t10"."tp_rn" AS "events",
  COALESCE("t10"."tp_next_pages", "t10"."tp_pages") - "t10"."tp_pages_before" AS "pages",
  CASE
    WHEN (
      "t10"."tp_f_utm_medium" IS NOT NULL
    )
    AND COALESCE(
      REGEXP_MATCHES("t10"."tp_f_utm_medium", '^(video|paid[-_ ]?video|cpv|olv|ctv)$'),
      FALSE
    )
    THEN 'video'
    WHEN (
      (
        "t10"."tp_f_utm_source" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_utm_source",
          '^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bluesky|whatsapp)$'
        ),
        FALSE
      )
      AND (
        (
          "t10"."tp_f_utm_medium" IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            "t10"."tp_f_utm_medium",
            '^(cpc|ppc|cpm|cpv|cpa|paid.*|.*_paid|retargeting|sem|ad|ads)$'
          ),
          FALSE
        )
      )
    )
    OR (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES("t10"."tp_f_utm_medium", '^(paid[-_ ]?social|social[-_ ]?paid|social[-_ ]?ads?)$'),
        FALSE
      )
    )
    OR (
      (
        "t10"."tp_f_click_id" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_click_id", '^(ttclid|twclid|li_fat_id)$'), FALSE)
      AND (
        (
          "t10"."tp_f_utm_medium" IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            "t10"."tp_f_utm_medium",
            '^(cpc|ppc|cpm|cpv|cpa|paid.*|.*_paid|retargeting|sem|ad|ads)$'
          ),
          FALSE
        )
      )
    )
    THEN 'paid_social'
    WHEN (
      (
        "t10"."tp_f_click_id" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_click_id", '^(gclid|gbraid|wbraid|msclkid)$'), FALSE)
    )
    OR (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES("t10"."tp_f_utm_medium", '^(cpc|ppc|sem|paid[-_ ]?search|search[-_ ]?ads?)$'),
        FALSE
      )
    )
    THEN 'paid_search'
    WHEN (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_utm_medium",
          '^(display|banner|cpm|expandable|interstitial|programmatic|native)$'
        ),
        FALSE
      )
    )
    OR (
      (
        "t10"."tp_f_click_id" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_click_id", '^dclid$'), FALSE)
    )
    THEN 'display'
    WHEN (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_utm_medium", '^(e[-_ ]?mail|newsletter)$'), FALSE)
    )
    OR (
      (
        "t10"."tp_f_utm_source" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_utm_source", '^(e[-_ ]?mail|newsletter)$'), FALSE)
    )
    THEN 'email'
    WHEN (
      "t10"."tp_f_utm_medium" IS NOT NULL
    )
    AND COALESCE(REGEXP_MATCHES("t10"."tp_f_utm_medium", '^(affiliate|affiliates|partner)$'), FALSE)
    THEN 'affiliate'
    WHEN (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_utm_medium", '^organic$'), FALSE)
    )
    OR (
      (
        "t10"."tp_f_utm_source" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_utm_source",
          '^(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|brave)$'
        ),
        FALSE
      )
      AND (
        "t10"."tp_f_utm_medium" IS NULL
      )
    )
    OR (
      (
        "t10"."tp_f_referrer_host" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_referrer_host",
          '(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|search\.brave)\.'
        ),
        FALSE
      )
      AND (
        "t10"."tp_f_utm_medium" IS NULL
      )
    )
    THEN 'organic_search'
    WHEN (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_utm_medium",
          '^(social|social[-_ ]?network|social[-_ ]?media|sm|organic[-_ ]?social)$'
        ),
        FALSE
      )
    )
    OR (
      (
        "t10"."tp_f_utm_source" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_utm_source",
          '^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bluesky|whatsapp)$'
        ),
        FALSE
      )
    )
    OR (
      (
        "t10"."tp_f_referrer_host" IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          "t10"."tp_f_referrer_host",
          '(^|\.)(facebook|fb|instagram|linkedin|lnkd|twitter|x|t|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bsky|whatsapp|vk|xing)\.(com|co|net|in|social|app|me|ru)$'
        ),
        FALSE
      )
    )
    OR (
      (
        "t10"."tp_f_click_id" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_click_id", '^fbclid$'), FALSE)
    )
    THEN 'organic_social'
    WHEN (
      (
        "t10"."tp_f_utm_medium" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_utm_medium", '^referral$'), FALSE)
    )
    OR (
      (
        "t10"."tp_f_referrer_host" IS NOT NULL
      )
      AND COALESCE(REGEXP_MATCHES("t10"."tp_f_referrer_host", '.'), FALSE)
    )
    THEN 'referral'
    WHEN (
      "t10"."tp_f_utm_source" IS NULL
    )
    AND (
      "t10"."tp_f_utm_medium" IS NULL
    )
    AND (
      "t10"."tp_f_referrer_host" IS NULL
    )
    THEN 'direct'
    WHEN TRUE
    THEN 'other'
    ELSE 'other'
  END AS "channel",
  "t10"."utm_campaign" AS "campaign",
  "t10"."utm_source" AS "source",
  "t10"."utm_medium" AS "medium",
  "t10"."path" AS "landing_path"
FROM (
  SELECT
    "t9"."person",
    "t9"."timestamp",
    "t9"."type",
    "t9"."tp_prev",
    "t9"."tp_rn",
    "t9"."tp_pages_before",
    "t9"."tp_n",
    "t9"."tp_pages",
    "t9"."tp_last",
    "t9"."session_index",
    "t9"."tp_next_rn",
    "t9"."tp_next_prev",
    "t9"."tp_next_pages",
    "t9"."tp_lp",
    "t9"."tp_lts",
    "t9"."tp_mid",
    "t9"."url",
    "t9"."path",
    "t9"."referrer",
    "t9"."utm_source",
    "t9"."utm_medium",
    "t9"."utm_campaign",
    "t9"."utm_term",
    "t9"."utm_content",
    "t9"."tp_pick",
    CASE
      WHEN LOWER("t9"."utm_source") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."utm_source")
    END AS "tp_f_utm_source",
    CASE
      WHEN LOWER("t9"."utm_medium") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."utm_medium")
    END AS "tp_f_utm_medium",
    CASE
      WHEN LOWER("t9"."utm_campaign") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."utm_campaign")
    END AS "tp_f_utm_campaign",
    CASE
      WHEN LOWER("t9"."utm_term") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."utm_term")
    END AS "tp_f_utm_term",
    CASE
      WHEN LOWER("t9"."utm_content") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."utm_content")
    END AS "tp_f_utm_content",
    CASE
      WHEN (
        CASE
          WHEN REGEXP_EXTRACT(LOWER("t9"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(LOWER("t9"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
        END IS NOT NULL
      )
      AND (
        CASE
          WHEN REGEXP_EXTRACT(LOWER("t9"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(LOWER("t9"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
        END = CASE
          WHEN REGEXP_EXTRACT(LOWER("t9"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(LOWER("t9"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
        END
      )
      THEN CAST(NULL AS TEXT)
      ELSE CASE
        WHEN REGEXP_EXTRACT(LOWER("t9"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
        THEN CAST(NULL AS TEXT)
        ELSE REGEXP_EXTRACT(LOWER("t9"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
      END
    END AS "tp_f_referrer_host",
    CASE
      WHEN REGEXP_EXTRACT(
        LOWER("t9"."url"),
        '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
        1
      ) = ''
      THEN CAST(NULL AS TEXT)
      ELSE REGEXP_EXTRACT(
        LOWER("t9"."url"),
        '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
        1
      )
    END AS "tp_f_click_id",
    CASE WHEN LOWER("t9"."url") = '' THEN CAST(NULL AS TEXT) ELSE LOWER("t9"."url") END AS "tp_f_url",
    CASE
      WHEN LOWER("t9"."path") = ''
      THEN CAST(NULL AS TEXT)
      ELSE LOWER("t9"."path")
    END AS "tp_f_path"
  FROM (
    SELECT
      "t8"."person",
      "t8"."timestamp",
      "t8"."type",
      "t8"."tp_prev",
      "t8"."tp_rn",
      "t8"."tp_pages_before",
      "t8"."tp_n",
      "t8"."tp_pages",
      "t8"."tp_last",
      "t8"."session_index",
      "t8"."tp_next_rn",
      "t8"."tp_next_prev",
      "t8"."tp_next_pages",
      "t8"."tp_lp",
      "t8"."tp_lts",
      "t8"."tp_mid",
      "t8"."url",
      "t8"."path",
      "t8"."referrer",
      "t8"."utm_source",
      "t8"."utm_medium",
      "t8"."utm_campaign",
      "t8"."utm_term",
      "t8"."utm_content",
      ROW_NUMBER() OVER (
        PARTITION BY "t8"."person", "t8"."session_index"
        ORDER BY "t8"."tp_mid" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) - 1 AS "tp_pick"
    FROM (
      SELECT
        "t7"."person",
        "t7"."timestamp",
        "t7"."type",
        "t7"."tp_prev",
        "t7"."tp_rn",
        "t7"."tp_pages_before",
        "t7"."tp_n",
        "t7"."tp_pages",
        "t7"."tp_last",
        "t7"."session_index",
        "t7"."tp_next_rn",
        "t7"."tp_next_prev",
        "t7"."tp_next_pages",
        "t3"."tp_lp",
        "t3"."tp_lts",
        "t3"."tp_mid",
        "t3"."url",
        "t3"."path",
        "t3"."referrer",
        "t3"."utm_source",
        "t3"."utm_medium",
        "t3"."utm_campaign",
        "t3"."utm_term",
        "t3"."utm_content"
      FROM (
        SELECT
          "t5"."person",
          "t5"."timestamp",
          "t5"."type",
          "t5"."tp_prev",
          "t5"."tp_rn",
          "t5"."tp_pages_before",
          "t5"."tp_n",
          "t5"."tp_pages",
          "t5"."tp_last",
          (
            ROW_NUMBER() OVER (
              PARTITION BY "t5"."person"
              ORDER BY "t5"."timestamp" ASC
              ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
            ) - 1
          ) + 1 AS "session_index",
          LEAD("t5"."tp_rn") OVER (
            PARTITION BY "t5"."person"
            ORDER BY "t5"."timestamp" ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "tp_next_rn",
          LEAD("t5"."tp_prev") OVER (
            PARTITION BY "t5"."person"
            ORDER BY "t5"."timestamp" ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "tp_next_prev",
          LEAD("t5"."tp_pages_before") OVER (
            PARTITION BY "t5"."person"
            ORDER BY "t5"."timestamp" ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "tp_next_pages"
        FROM (
          SELECT
            *
          FROM (
            SELECT
              "t2"."person",
              "t2"."timestamp",
              "t2"."type",
              LAG("t2"."timestamp") OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
              ) AS "tp_prev",
              ROW_NUMBER() OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
              ) - 1 AS "tp_rn",
              SUM(CAST("t2"."type" = 'page' AS BIGINT)) OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
              ) - CAST("t2"."type" = 'page' AS BIGINT) AS "tp_pages_before",
              COUNT("t2"."timestamp") OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
              ) AS "tp_n",
              SUM(CAST("t2"."type" = 'page' AS BIGINT)) OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
              ) AS "tp_pages",
              MAX("t2"."timestamp") OVER (
                PARTITION BY "t2"."person"
                ORDER BY "t2"."timestamp" ASC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
              ) AS "tp_last"
            FROM (
              SELECT
                COALESCE("t0"."user_id", "t0"."anonymous_id") AS "person",
                "t0"."timestamp",
                "t0"."type"
              FROM "events" AS "t0"
              WHERE
                "t0"."type" IN ('page', 'screen', 'track')
            ) AS "t2"
          ) AS "t4"
          WHERE
            (
              "t4"."tp_prev" IS NULL
            )
            OR (
              "t4"."timestamp" > (
                "t4"."tp_prev" + INTERVAL '1800000' MILLISECOND
              )
            )
        ) AS "t5"
      ) AS "t7"
      INNER JOIN (
        SELECT
          COALESCE("t0"."user_id", "t0"."anonymous_id") AS "tp_lp",
          "t0"."timestamp" AS "tp_lts",
          "t0"."message_id" AS "tp_mid",
          "t0"."url",
          "t0"."path",
          "t0"."referrer",
          "t0"."utm_source",
          "t0"."utm_medium",
          "t0"."utm_campaign",
          "t0"."utm_term",
          "t0"."utm_content"
        FROM "events" AS "t0"
        WHERE
          "t0"."type" IN ('page', 'screen', 'track')
      ) AS "t3"
        ON "t7"."person" = "t3"."tp_lp" AND "t7"."timestamp" = "t3"."tp_lts"
    ) AS "t8"
  ) AS "t9"
  WHERE
    "t9"."tp_pick" = 0
) AS "t10"
