-- features.customer_rfm: a customer's recency, frequency and monetary value as of each day
-- they bought (all of that day's purchases included), one row per customer and purchase day.
WITH days AS (
    SELECT
        customer_id,
        purchased_at,
        count(*) AS purchases,
        sum(cds) AS cds,
        -- sums in exact cents: a float sum depends on the order the engine adds in
        sum(CAST(amount AS DECIMAL(12, 2))) AS amount,
        date_diff('day', TIMESTAMP '1970-01-01 00:00:00', purchased_at) AS day_number
    FROM silver.transactions
    GROUP BY customer_id, purchased_at
),
running AS (
    SELECT
        customer_id,
        purchased_at,
        day_number - lag(day_number) OVER (PARTITION BY customer_id ORDER BY day_number) AS recency_days,
        day_number - min(day_number) OVER (PARTITION BY customer_id ORDER BY day_number) AS tenure_days,
        sum(purchases) OVER (PARTITION BY customer_id ORDER BY day_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS frequency,
        count(*) OVER (PARTITION BY customer_id ORDER BY day_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS purchase_days,
        sum(cds) OVER (PARTITION BY customer_id ORDER BY day_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cds_total,
        sum(amount) OVER (PARTITION BY customer_id ORDER BY day_number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS monetary_total,
        sum(amount) OVER (PARTITION BY customer_id ORDER BY day_number RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS amount_30d,
        sum(amount) OVER (PARTITION BY customer_id ORDER BY day_number RANGE BETWEEN 89 PRECEDING AND CURRENT ROW) AS amount_90d
    FROM days  -- no named windows: Spark refuses a frame added to one
)
SELECT
    customer_id,
    purchased_at,
    recency_days,
    tenure_days,
    frequency,
    purchase_days,
    cds_total,
    CAST(monetary_total AS DOUBLE) AS monetary_total,
    round(CAST(monetary_total AS DOUBLE) / frequency, 2) AS monetary_mean,
    CAST(amount_30d AS DOUBLE) AS amount_30d,
    CAST(amount_90d AS DOUBLE) AS amount_90d
FROM running
