-- The customers the replay scores: one row per customer and month end from July 1997 (the
-- first month after the replay's first model was trained) to the end of the log, for every
-- customer who had bought by then. No label: a score is made before the outcome is known.
WITH month_ends AS (
    SELECT DISTINCT CAST(last_day(purchased_at) AS TIMESTAMP) AS snapshot_at
    FROM silver.transactions
),
customers AS (
    SELECT customer_id, min(purchased_at) AS first_purchase_at
    FROM silver.transactions
    GROUP BY customer_id
)
SELECT c.customer_id, m.snapshot_at
FROM customers AS c
JOIN month_ends AS m ON m.snapshot_at >= c.first_purchase_at
WHERE m.snapshot_at >= TIMESTAMP '1997-07-01 00:00:00'
