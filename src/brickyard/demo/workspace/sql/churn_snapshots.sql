-- gold.churn_snapshots: the training set's entity rows. One row per customer and month end
-- from their first purchase on, labelled churned = no purchase in the 90 days after the
-- snapshot. Only month ends whose 90-day horizon ends within the data are kept: later ones
-- cannot be labelled yet (a customer with no purchase there may still buy).
WITH data_end AS (
    SELECT max(purchased_at) AS last_day FROM silver.transactions
),
month_ends AS (
    SELECT DISTINCT CAST(last_day(purchased_at) AS TIMESTAMP) AS snapshot_at
    FROM silver.transactions
),
customers AS (
    SELECT customer_id, min(purchased_at) AS first_purchase_at
    FROM silver.transactions
    GROUP BY customer_id
),
snapshots AS (
    SELECT c.customer_id, m.snapshot_at
    FROM customers AS c
    JOIN month_ends AS m ON m.snapshot_at >= c.first_purchase_at
    CROSS JOIN data_end AS e
    WHERE m.snapshot_at + INTERVAL 90 DAY <= e.last_day
),
next_purchase AS (
    SELECT s.customer_id, s.snapshot_at, min(t.purchased_at) AS next_purchase_at
    FROM snapshots AS s
    LEFT JOIN silver.transactions AS t
        ON t.customer_id = s.customer_id AND t.purchased_at > s.snapshot_at
    GROUP BY s.customer_id, s.snapshot_at
)
SELECT
    customer_id,
    snapshot_at,
    CASE WHEN next_purchase_at IS NULL OR next_purchase_at > snapshot_at + INTERVAL 90 DAY
         THEN 1 ELSE 0 END AS churned
FROM next_purchase
