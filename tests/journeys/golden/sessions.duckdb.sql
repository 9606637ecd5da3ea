WITH "t3" AS (
  SELECT
    "t2"."person",
    "t2"."message_id",
    "t2"."type",
    "t2"."event",
    "t2"."name",
    "t2"."timestamp",
    "t2"."url",
    "t2"."path",
    "t2"."referrer",
    "t2"."utm_source",
    "t2"."utm_medium",
    "t2"."utm_campaign",
    "t2"."utm_term",
    "t2"."utm_content",
    "t2"."session_start_flag",
    SUM(CAST("t2"."session_start_flag" AS BIGINT)) OVER (
      PARTITION BY "t2"."person"
      ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS "session_index"
  FROM (
    SELECT
      "t1"."person",
      "t1"."message_id",
      "t1"."type",
      "t1"."event",
      "t1"."name",
      "t1"."timestamp",
      "t1"."url",
      "t1"."path",
      "t1"."referrer",
      "t1"."utm_source",
      "t1"."utm_medium",
      "t1"."utm_campaign",
      "t1"."utm_term",
      "t1"."utm_content",
      (
        LAG("t1"."timestamp") OVER (
          PARTITION BY "t1"."person"
          ORDER BY "t1"."timestamp" ASC, "t1"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) IS NULL
      )
      OR (
        "t1"."timestamp" > (
          LAG("t1"."timestamp") OVER (
            PARTITION BY "t1"."person"
            ORDER BY "t1"."timestamp" ASC, "t1"."message_id" ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) + INTERVAL '1800000' MILLISECOND
        )
      ) AS "session_start_flag"
    FROM (
      SELECT
        COALESCE("t0"."user_id", "t0"."anonymous_id") AS "person",
        "t0"."message_id",
        "t0"."type",
        "t0"."event",
        "t0"."name",
        "t0"."timestamp",
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
    ) AS "t1"
  ) AS "t2"
)
SELECT
  "t8"."person",
  "t8"."session_id",
  "t8"."session_index",
  "t10"."session_start",
  "t8"."session_end",
  "t8"."events",
  "t8"."pages",
  "t10"."channel",
  "t10"."campaign",
  "t10"."source",
  "t10"."medium",
  "t10"."landing_path"
FROM (
  SELECT
    "t6"."person",
    "t6"."session_index",
    "t6"."session_end",
    "t6"."events",
    "t6"."pages",
    "t6"."person" || '#' || CAST("t6"."session_index" AS TEXT) AS "session_id"
  FROM (
    SELECT
      "t5"."person",
      "t5"."session_index",
      MAX("t5"."timestamp") AS "session_end",
      COUNT(*) AS "events",
      SUM(CAST("t5"."type" = 'page' AS INT)) AS "pages"
    FROM (
      SELECT
        "t4"."person",
        "t4"."message_id",
        "t4"."type",
        "t4"."event",
        "t4"."name",
        "t4"."timestamp",
        "t4"."url",
        "t4"."path",
        "t4"."referrer",
        "t4"."utm_source",
        "t4"."utm_medium",
        "t4"."utm_campaign",
        "t4"."utm_term",
        "t4"."utm_content",
        "t4"."session_start_flag",
        "t4"."session_index",
        "t4"."person" || '#' || CAST("t4"."session_index" AS TEXT) AS "session_id"
      FROM "t3" AS "t4"
    ) AS "t5"
    GROUP BY
      1,
      2
  ) AS "t6"
) AS "t8"
INNER JOIN (
  SELECT
    "t4"."person" AS "tp_person",
    "t4"."session_index" AS "tp_index",
    "t4"."timestamp" AS "session_start",
    CASE
      WHEN (
        CASE
          WHEN LOWER("t4"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t4"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END,
          '^(video|paid[-_ ]?video|cpv|olv|ctv)$'
        ),
        FALSE
      )
      THEN 'video'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_source")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_source") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_source")
            END,
            '^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bluesky|whatsapp)$'
          ),
          FALSE
        )
        AND (
          (
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END IS NOT NULL
          )
          AND COALESCE(
            REGEXP_MATCHES(
              CASE
                WHEN LOWER("t4"."utm_medium") = ''
                THEN CAST(NULL AS TEXT)
                ELSE LOWER("t4"."utm_medium")
              END,
              '^(cpc|ppc|cpm|cpv|cpa|paid.*|.*_paid|retargeting|sem|ad|ads)$'
            ),
            FALSE
          )
        )
      )
      OR (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^(paid[-_ ]?social|social[-_ ]?paid|social[-_ ]?ads?)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            )
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              ) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              )
            END,
            '^(ttclid|twclid|li_fat_id)$'
          ),
          FALSE
        )
        AND (
          (
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END IS NOT NULL
          )
          AND COALESCE(
            REGEXP_MATCHES(
              CASE
                WHEN LOWER("t4"."utm_medium") = ''
                THEN CAST(NULL AS TEXT)
                ELSE LOWER("t4"."utm_medium")
              END,
              '^(cpc|ppc|cpm|cpv|cpa|paid.*|.*_paid|retargeting|sem|ad|ads)$'
            ),
            FALSE
          )
        )
      )
      THEN 'paid_social'
      WHEN (
        (
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            )
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              ) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              )
            END,
            '^(gclid|gbraid|wbraid|msclkid)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^(cpc|ppc|sem|paid[-_ ]?search|search[-_ ]?ads?)$'
          ),
          FALSE
        )
      )
      THEN 'paid_search'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^(display|banner|cpm|expandable|interstitial|programmatic|native)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            )
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              ) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              )
            END,
            '^dclid$'
          ),
          FALSE
        )
      )
      THEN 'display'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^(e[-_ ]?mail|newsletter)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN LOWER("t4"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_source")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_source") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_source")
            END,
            '^(e[-_ ]?mail|newsletter)$'
          ),
          FALSE
        )
      )
      THEN 'email'
      WHEN (
        CASE
          WHEN LOWER("t4"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t4"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END,
          '^(affiliate|affiliates|partner)$'
        ),
        FALSE
      )
      THEN 'affiliate'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^organic$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN LOWER("t4"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_source")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_source") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_source")
            END,
            '^(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|brave)$'
          ),
          FALSE
        )
        AND (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NULL
        )
      )
      OR (
        (
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END IS NOT NULL
              )
              AND (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END = CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END
              )
              THEN CAST(NULL AS TEXT)
              ELSE CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            END,
            '(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|search\.brave)\.'
          ),
          FALSE
        )
        AND (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NULL
        )
      )
      THEN 'organic_search'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^(social|social[-_ ]?network|social[-_ ]?media|sm|organic[-_ ]?social)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN LOWER("t4"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_source")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_source") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_source")
            END,
            '^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bluesky|whatsapp)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END IS NOT NULL
              )
              AND (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END = CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END
              )
              THEN CAST(NULL AS TEXT)
              ELSE CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            END,
            '(^|\.)(facebook|fb|instagram|linkedin|lnkd|twitter|x|t|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bsky|whatsapp|vk|xing)\.(com|co|net|in|social|app|me|ru)$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t4"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            )
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              ) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(
                LOWER("t4"."url"),
                '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
                1
              )
            END,
            '^fbclid$'
          ),
          FALSE
        )
      )
      THEN 'organic_social'
      WHEN (
        (
          CASE
            WHEN LOWER("t4"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t4"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t4"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t4"."utm_medium")
            END,
            '^referral$'
          ),
          FALSE
        )
      )
      OR (
        (
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END IS NOT NULL
              )
              AND (
                CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END = CASE
                  WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                  THEN CAST(NULL AS TEXT)
                  ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
                END
              )
              THEN CAST(NULL AS TEXT)
              ELSE CASE
                WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            END,
            '.'
          ),
          FALSE
        )
      )
      THEN 'referral'
      WHEN (
        CASE
          WHEN LOWER("t4"."utm_source") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t4"."utm_source")
        END IS NULL
      )
      AND (
        CASE
          WHEN LOWER("t4"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t4"."utm_medium")
        END IS NULL
      )
      AND (
        CASE
          WHEN (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END IS NOT NULL
          )
          AND (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END = CASE
              WHEN REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t4"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          )
          THEN CAST(NULL AS TEXT)
          ELSE CASE
            WHEN REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t4"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END
        END IS NULL
      )
      THEN 'direct'
      WHEN TRUE
      THEN 'other'
      ELSE 'other'
    END AS "channel",
    "t4"."utm_campaign" AS "campaign",
    "t4"."utm_source" AS "source",
    "t4"."utm_medium" AS "medium",
    "t4"."path" AS "landing_path"
  FROM "t3" AS "t4"
  WHERE
    "t4"."session_start_flag"
) AS "t10"
  ON "t8"."person" = "t10"."tp_person" AND "t8"."session_index" = "t10"."tp_index"
