SELECT
  "t7"."person",
  "t7"."person" || '#' || CAST("t7"."session_index" AS TEXT) AS "session_id",
  "t7"."session_index",
  "t7"."timestamp" AS "session_start",
  COALESCE("t7"."tp_next_prev", "t7"."tp_last") AS "session_end",
  COALESCE("t7"."tp_next_rn", "t7"."tp_n") - "t7"."tp_rn" AS "events",
  COALESCE("t7"."tp_next_pages", "t7"."tp_pages") - "t7"."tp_pages_before" AS "pages",
  CASE
    WHEN (
      CASE
        WHEN LOWER("t3"."utm_medium") = ''
        THEN CAST(NULL AS TEXT)
        ELSE LOWER("t3"."utm_medium")
      END IS NOT NULL
    )
    AND COALESCE(
      REGEXP_MATCHES(
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END,
        '^(video|paid[-_ ]?video|cpv|olv|ctv)$'
      ),
      FALSE
    )
    THEN 'video'
    WHEN (
      (
        CASE
          WHEN LOWER("t3"."utm_source") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_source")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_source")
          END,
          '^(facebook|fb|meta|instagram|ig|linkedin|twitter|x|pinterest|reddit|tiktok|youtube|snapchat|threads|mastodon|bluesky|whatsapp)$'
        ),
        FALSE
      )
      AND (
        (
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t3"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t3"."utm_medium")
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
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
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
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          ) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          )
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t3"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t3"."url"),
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
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
          END IS NOT NULL
        )
        AND COALESCE(
          REGEXP_MATCHES(
            CASE
              WHEN LOWER("t3"."utm_medium") = ''
              THEN CAST(NULL AS TEXT)
              ELSE LOWER("t3"."utm_medium")
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
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          ) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          )
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t3"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t3"."url"),
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
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
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
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
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
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          ) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          )
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t3"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t3"."url"),
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
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
          END,
          '^(e[-_ ]?mail|newsletter)$'
        ),
        FALSE
      )
    )
    OR (
      (
        CASE
          WHEN LOWER("t3"."utm_source") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_source")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_source")
          END,
          '^(e[-_ ]?mail|newsletter)$'
        ),
        FALSE
      )
    )
    THEN 'email'
    WHEN (
      CASE
        WHEN LOWER("t3"."utm_medium") = ''
        THEN CAST(NULL AS TEXT)
        ELSE LOWER("t3"."utm_medium")
      END IS NOT NULL
    )
    AND COALESCE(
      REGEXP_MATCHES(
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END,
        '^(affiliate|affiliates|partner)$'
      ),
      FALSE
    )
    THEN 'affiliate'
    WHEN (
      (
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
          END,
          '^organic$'
        ),
        FALSE
      )
    )
    OR (
      (
        CASE
          WHEN LOWER("t3"."utm_source") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_source")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_source")
          END,
          '^(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|brave)$'
        ),
        FALSE
      )
      AND (
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NULL
      )
    )
    OR (
      (
        CASE
          WHEN (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END IS NOT NULL
          )
          AND (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END = CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          )
          THEN CAST(NULL AS TEXT)
          ELSE CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          END,
          '(^|\.)(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|naver|startpage|search\.brave)\.'
        ),
        FALSE
      )
      AND (
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NULL
      )
    )
    THEN 'organic_search'
    WHEN (
      (
        CASE
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
          END,
          '^(social|social[-_ ]?network|social[-_ ]?media|sm|organic[-_ ]?social)$'
        ),
        FALSE
      )
    )
    OR (
      (
        CASE
          WHEN LOWER("t3"."utm_source") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_source")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_source") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_source")
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
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END IS NOT NULL
          )
          AND (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END = CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          )
          THEN CAST(NULL AS TEXT)
          ELSE CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
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
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          ) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(
            LOWER("t3"."url"),
            '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
            1
          )
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN REGEXP_EXTRACT(
              LOWER("t3"."url"),
              '[?&](gclid|gbraid|wbraid|dclid|msclkid|fbclid|ttclid|twclid|li_fat_id)=',
              1
            ) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(
              LOWER("t3"."url"),
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
          WHEN LOWER("t3"."utm_medium") = ''
          THEN CAST(NULL AS TEXT)
          ELSE LOWER("t3"."utm_medium")
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN LOWER("t3"."utm_medium") = ''
            THEN CAST(NULL AS TEXT)
            ELSE LOWER("t3"."utm_medium")
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
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END IS NOT NULL
          )
          AND (
            CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END = CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
            END
          )
          THEN CAST(NULL AS TEXT)
          ELSE CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END
        END IS NOT NULL
      )
      AND COALESCE(
        REGEXP_MATCHES(
          CASE
            WHEN (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END IS NOT NULL
            )
            AND (
              CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END = CASE
                WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
                THEN CAST(NULL AS TEXT)
                ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
              END
            )
            THEN CAST(NULL AS TEXT)
            ELSE CASE
              WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
              THEN CAST(NULL AS TEXT)
              ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
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
        WHEN LOWER("t3"."utm_source") = ''
        THEN CAST(NULL AS TEXT)
        ELSE LOWER("t3"."utm_source")
      END IS NULL
    )
    AND (
      CASE
        WHEN LOWER("t3"."utm_medium") = ''
        THEN CAST(NULL AS TEXT)
        ELSE LOWER("t3"."utm_medium")
      END IS NULL
    )
    AND (
      CASE
        WHEN (
          CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END IS NOT NULL
        )
        AND (
          CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END = CASE
            WHEN REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
            THEN CAST(NULL AS TEXT)
            ELSE REGEXP_EXTRACT(LOWER("t3"."url"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
          END
        )
        THEN CAST(NULL AS TEXT)
        ELSE CASE
          WHEN REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1) = ''
          THEN CAST(NULL AS TEXT)
          ELSE REGEXP_EXTRACT(LOWER("t3"."referrer"), '^[a-z][a-z0-9+.\-]*://([^/:?#@]+)', 1)
        END
      END IS NULL
    )
    THEN 'direct'
    WHEN TRUE
    THEN 'other'
    ELSE 'other'
  END AS "channel",
  "t3"."utm_campaign" AS "campaign",
  "t3"."utm_source" AS "source",
  "t3"."utm_medium" AS "medium",
  "t3"."path" AS "landing_path"
FROM (
  SELECT
    "t5"."person",
    "t5"."message_id",
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
        ORDER BY "t5"."timestamp" ASC, "t5"."message_id" ASC
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) - 1
    ) + 1 AS "session_index",
    LEAD("t5"."tp_rn") OVER (
      PARTITION BY "t5"."person"
      ORDER BY "t5"."timestamp" ASC, "t5"."message_id" ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS "tp_next_rn",
    LEAD("t5"."tp_prev") OVER (
      PARTITION BY "t5"."person"
      ORDER BY "t5"."timestamp" ASC, "t5"."message_id" ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS "tp_next_prev",
    LEAD("t5"."tp_pages_before") OVER (
      PARTITION BY "t5"."person"
      ORDER BY "t5"."timestamp" ASC, "t5"."message_id" ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS "tp_next_pages"
  FROM (
    SELECT
      *
    FROM (
      SELECT
        "t2"."person",
        "t2"."message_id",
        "t2"."timestamp",
        "t2"."type",
        LAG("t2"."timestamp") OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "tp_prev",
        ROW_NUMBER() OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) - 1 AS "tp_rn",
        SUM(CAST("t2"."type" = 'page' AS BIGINT)) OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) - CAST("t2"."type" = 'page' AS BIGINT) AS "tp_pages_before",
        COUNT("t2"."message_id") OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "tp_n",
        SUM(CAST("t2"."type" = 'page' AS BIGINT)) OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "tp_pages",
        MAX("t2"."timestamp") OVER (
          PARTITION BY "t2"."person"
          ORDER BY "t2"."timestamp" ASC, "t2"."message_id" ASC
          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS "tp_last"
      FROM (
        SELECT
          COALESCE("t0"."user_id", "t0"."anonymous_id") AS "person",
          "t0"."message_id",
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
  ON "t7"."message_id" = "t3"."tp_mid"
