-- gold.churn_training_rows: each snapshot with the customer's features as of its month end,
-- a point-in-time join in plain SQL: the latest features.customer_rfm row with
-- purchased_at <= snapshot_at (the table has no TTL), else NULLs. No snapshot is dropped.
WITH candidates AS (
    SELECT
        s.customer_id,
        s.snapshot_at,
        s.churned,
        f.recency_days,
        f.tenure_days,
        f.frequency,
        f.purchase_days,
        f.cds_total,
        f.monetary_total,
        f.monetary_mean,
        f.amount_30d,
        f.amount_90d,
        row_number() OVER (PARTITION BY s.customer_id, s.snapshot_at ORDER BY f.purchased_at DESC) AS newest
    FROM gold.churn_snapshots AS s
    LEFT JOIN features.customer_rfm AS f
        ON f.customer_id = s.customer_id
        AND f.purchased_at <= s.snapshot_at
)
SELECT * EXCLUDE (newest)
FROM candidates
WHERE newest = 1
