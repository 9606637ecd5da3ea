WITH "t6" AS (
  SELECT
    "t3"."message_id",
    "t3"."type",
    "t3"."event",
    "t3"."name",
    "t3"."user_id",
    "t3"."anonymous_id",
    "t3"."group_id",
    "t3"."previous_id",
    "t3"."timestamp",
    "t3"."original_timestamp",
    "t3"."sent_at",
    "t3"."received_at",
    "t3"."source",
    "t3"."properties",
    "t3"."traits",
    "t3"."context",
    "t3"."integrations",
    "t3"."email",
    "t3"."revenue",
    "t3"."currency",
    "t3"."order_id",
    "t3"."url",
    "t3"."path",
    "t3"."referrer",
    "t3"."utm_source",
    "t3"."utm_medium",
    "t3"."utm_campaign",
    "t3"."utm_term",
    "t3"."utm_content",
    "t3"."person",
    ROW_NUMBER() OVER (
      PARTITION BY "t3"."person"
      ORDER BY "t3"."timestamp" ASC, "t3"."message_id" ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) - 1 AS "tp_rn"
  FROM (
    SELECT
      "t0"."message_id",
      "t0"."type",
      "t0"."event",
      "t0"."name",
      "t0"."user_id",
      "t0"."anonymous_id",
      "t0"."group_id",
      "t0"."previous_id",
      "t0"."timestamp",
      "t0"."original_timestamp",
      "t0"."sent_at",
      "t0"."received_at",
      "t0"."source",
      "t0"."properties",
      "t0"."traits",
      "t0"."context",
      "t0"."integrations",
      "t0"."email",
      "t0"."revenue",
      "t0"."currency",
      "t0"."order_id",
      "t0"."url",
      "t0"."path",
      "t0"."referrer",
      "t0"."utm_source",
      "t0"."utm_medium",
      "t0"."utm_campaign",
      "t0"."utm_term",
      "t0"."utm_content",
      COALESCE("t0"."user_id", "t0"."anonymous_id") AS "person"
    FROM "events" AS "t0"
    WHERE
      "t0"."type" = 'page' AND "t0"."path" LIKE '/product%'
  ) AS "t3"
), "t13" AS (
  SELECT
    *
  FROM (
    SELECT
      "t11"."person",
      "t11"."t1",
      "t11"."tp_msg1",
      "t11"."tp_start",
      "t11"."breakdown",
      "t5"."tp_p",
      "t5"."tp_ts",
      "t5"."tp_m"
    FROM (
      SELECT
        "t7"."person",
        "t7"."timestamp" AS "t1",
        "t7"."message_id" AS "tp_msg1",
        "t7"."timestamp" AS "tp_start",
        CAST(NULL AS TEXT) AS "breakdown"
      FROM "t6" AS "t7"
      WHERE
        "t7"."tp_rn" = 0 AND "t7"."timestamp" IS NOT NULL
    ) AS "t11"
    INNER JOIN (
      SELECT
        COALESCE("t0"."user_id", "t0"."anonymous_id") AS "tp_p",
        "t0"."timestamp" AS "tp_ts",
        "t0"."message_id" AS "tp_m"
      FROM "events" AS "t0"
      WHERE
        "t0"."type" = 'track' AND "t0"."event" = 'Product Added'
    ) AS "t5"
      ON "t11"."person" = "t5"."tp_p"
  ) AS "t12"
  WHERE
    (
      (
        "t12"."tp_ts" > "t12"."t1"
      )
      OR (
        (
          "t12"."tp_ts" = "t12"."t1"
        ) AND (
          "t12"."tp_m" <> "t12"."tp_msg1"
        )
      )
    )
    AND "t12"."tp_ts" <= (
      "t12"."tp_start" + INTERVAL '259200000' MILLISECOND
    )
), "t28" AS (
  SELECT
    *
  FROM (
    SELECT
      "t26"."person",
      "t26"."t1",
      "t26"."tp_msg1",
      "t26"."tp_start",
      "t26"."breakdown",
      "t26"."t2",
      "t26"."tp_msg2",
      "t4"."tp_p",
      "t4"."tp_ts",
      "t4"."tp_m"
    FROM (
      SELECT
        "t22"."person",
        "t22"."t1",
        "t22"."tp_msg1",
        "t22"."tp_start",
        "t22"."breakdown",
        "t22"."tp_tk" AS "t2",
        "t22"."tp_mk" AS "tp_msg2"
      FROM (
        SELECT
          "t21".*
          EXCLUDE ("tp_r")
        FROM (
          SELECT
            "t10"."person",
            "t10"."t1",
            "t10"."tp_msg1",
            "t10"."tp_start",
            "t10"."breakdown",
            "t20"."tp_r",
            "t20"."tp_tk",
            "t20"."tp_mk"
          FROM (
            SELECT
              "t7"."person",
              "t7"."timestamp" AS "t1",
              "t7"."message_id" AS "tp_msg1",
              "t7"."timestamp" AS "tp_start",
              CAST(NULL AS TEXT) AS "breakdown"
            FROM "t6" AS "t7"
            WHERE
              "t7"."tp_rn" = 0
          ) AS "t10"
          LEFT OUTER JOIN (
            SELECT
              "t18"."person" AS "tp_r",
              MIN("t18"."tp_ts") AS "tp_tk",
              MIN("t18"."tp_m") AS "tp_mk"
            FROM (
              SELECT
                "t15"."person",
                "t15"."t1",
                "t15"."tp_msg1",
                "t15"."tp_start",
                "t15"."breakdown",
                "t15"."tp_p",
                "t15"."tp_ts",
                "t15"."tp_m",
                "t17"."tp_q",
                "t17"."tp_t"
              FROM "t13" AS "t15"
              INNER JOIN (
                SELECT
                  "t14"."person" AS "tp_q",
                  MIN("t14"."tp_ts") AS "tp_t"
                FROM "t13" AS "t14"
                GROUP BY
                  1
              ) AS "t17"
                ON "t15"."person" = "t17"."tp_q" AND "t15"."tp_ts" = "t17"."tp_t"
            ) AS "t18"
            GROUP BY
              1
          ) AS "t20"
            ON "t10"."person" = "t20"."tp_r"
        ) AS "t21"
      ) AS "t22"
      WHERE
        "t22"."tp_tk" IS NOT NULL
    ) AS "t26"
    INNER JOIN (
      SELECT
        COALESCE("t0"."user_id", "t0"."anonymous_id") AS "tp_p",
        "t0"."timestamp" AS "tp_ts",
        "t0"."message_id" AS "tp_m"
      FROM "events" AS "t0"
      WHERE
        "t0"."type" = 'track' AND "t0"."event" = 'Order Completed'
    ) AS "t4"
      ON "t26"."person" = "t4"."tp_p"
  ) AS "t27"
  WHERE
    (
      (
        "t27"."tp_ts" > "t27"."t2"
      )
      OR (
        (
          "t27"."tp_ts" = "t27"."t2"
        ) AND (
          "t27"."tp_m" <> "t27"."tp_msg2"
        )
      )
    )
    AND "t27"."tp_ts" <= (
      "t27"."tp_start" + INTERVAL '259200000' MILLISECOND
    )
)
SELECT
  "t37"."person",
  "t37"."breakdown",
  "t37"."t1",
  "t37"."t2",
  "t37"."tp_tk" AS "t3"
FROM (
  SELECT
    "t36".*
    EXCLUDE ("tp_r")
  FROM (
    SELECT
      "t25"."person",
      "t25"."t1",
      "t25"."tp_msg1",
      "t25"."tp_start",
      "t25"."breakdown",
      "t25"."t2",
      "t25"."tp_msg2",
      "t35"."tp_r",
      "t35"."tp_tk",
      "t35"."tp_mk"
    FROM (
      SELECT
        "t22"."person",
        "t22"."t1",
        "t22"."tp_msg1",
        "t22"."tp_start",
        "t22"."breakdown",
        "t22"."tp_tk" AS "t2",
        "t22"."tp_mk" AS "tp_msg2"
      FROM (
        SELECT
          "t21".*
          EXCLUDE ("tp_r")
        FROM (
          SELECT
            "t10"."person",
            "t10"."t1",
            "t10"."tp_msg1",
            "t10"."tp_start",
            "t10"."breakdown",
            "t20"."tp_r",
            "t20"."tp_tk",
            "t20"."tp_mk"
          FROM (
            SELECT
              "t7"."person",
              "t7"."timestamp" AS "t1",
              "t7"."message_id" AS "tp_msg1",
              "t7"."timestamp" AS "tp_start",
              CAST(NULL AS TEXT) AS "breakdown"
            FROM "t6" AS "t7"
            WHERE
              "t7"."tp_rn" = 0
          ) AS "t10"
          LEFT OUTER JOIN (
            SELECT
              "t18"."person" AS "tp_r",
              MIN("t18"."tp_ts") AS "tp_tk",
              MIN("t18"."tp_m") AS "tp_mk"
            FROM (
              SELECT
                "t15"."person",
                "t15"."t1",
                "t15"."tp_msg1",
                "t15"."tp_start",
                "t15"."breakdown",
                "t15"."tp_p",
                "t15"."tp_ts",
                "t15"."tp_m",
                "t17"."tp_q",
                "t17"."tp_t"
              FROM "t13" AS "t15"
              INNER JOIN (
                SELECT
                  "t14"."person" AS "tp_q",
                  MIN("t14"."tp_ts") AS "tp_t"
                FROM "t13" AS "t14"
                GROUP BY
                  1
              ) AS "t17"
                ON "t15"."person" = "t17"."tp_q" AND "t15"."tp_ts" = "t17"."tp_t"
            ) AS "t18"
            GROUP BY
              1
          ) AS "t20"
            ON "t10"."person" = "t20"."tp_r"
        ) AS "t21"
      ) AS "t22"
    ) AS "t25"
    LEFT OUTER JOIN (
      SELECT
        "t33"."person" AS "tp_r",
        MIN("t33"."tp_ts") AS "tp_tk",
        MIN("t33"."tp_m") AS "tp_mk"
      FROM (
        SELECT
          "t30"."person",
          "t30"."t1",
          "t30"."tp_msg1",
          "t30"."tp_start",
          "t30"."breakdown",
          "t30"."t2",
          "t30"."tp_msg2",
          "t30"."tp_p",
          "t30"."tp_ts",
          "t30"."tp_m",
          "t32"."tp_q",
          "t32"."tp_t"
        FROM "t28" AS "t30"
        INNER JOIN (
          SELECT
            "t29"."person" AS "tp_q",
            MIN("t29"."tp_ts") AS "tp_t"
          FROM "t28" AS "t29"
          GROUP BY
            1
        ) AS "t32"
          ON "t30"."person" = "t32"."tp_q" AND "t30"."tp_ts" = "t32"."tp_t"
      ) AS "t33"
      GROUP BY
        1
    ) AS "t35"
      ON "t25"."person" = "t35"."tp_r"
  ) AS "t36"
) AS "t37"
