-- features.customer_rfm: a customer's recency, frequency and monetary value as of each day
-- they bought (all of that day's purchases included), one row per customer and purchase day.
WITH days AS (
    SELECT
        customer_id,
        purchased_at,
        count(*) AS purchases,
        sum(cds) AS cds,
        sum(amount) AS amount,
        date_diff('day', TIMESTAMP '1970-01-01 00:00:00', purchased_at) AS day_number
    FROM silver.transactions
    GROUP BY customer_id, purchased_at
),
running AS (
    SELECT
        customer_id,
        purchased_at,
        day_number - lag(day_number) OVER by_day AS recency_days,
        day_number - min(day_number) OVER by_day AS tenure_days,
        sum(purchases) OVER (by_day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS frequency,
        count(*) OVER (by_day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS purchase_days,
        sum(cds) OVER (by_day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cds_total,
        sum(amount) OVER (by_day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS monetary_total,
        sum(amount) OVER (PARTITION BY customer_id ORDER BY day_number RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS amount_30d,
        sum(amount) OVER (PARTITION BY customer_id ORDER BY day_number RANGE BETWEEN 89 PRECEDING AND CURRENT ROW) AS amount_90d
    FROM days
    WINDOW by_day AS (PARTITION BY customer_id ORDER BY day_number)
)
SELECT
    customer_id,
    purchased_at,
    recency_days,
    tenure_days,
    frequency,
    purchase_days,
    cds_total,
    round(monetary_total, 2) AS monetary_total,
    round(monetary_total / frequency, 2) AS monetary_mean,
    round(amount_30d, 2) AS amount_30d,
    round(amount_90d, 2) AS amount_90d
FROM running
