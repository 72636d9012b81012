-- silver.transactions: one row per purchase, parsed from the fixed-width CDNOW line
-- ' 00001 19970101  1   11.77' (customer id, date YYYYMMDD, number of CDs, dollars).
-- A line that does not parse gets NULLs, which contracts/silver.transactions.yaml sends to
-- silver.transactions__quarantine with the reason.
WITH fields AS (
    SELECT
        _source_file,
        line,
        -- the same line twice in a file is two purchases (255 in CDNOW): number the copies
        row_number() OVER (PARTITION BY _source_file, line ORDER BY line) AS copy_number,
        regexp_extract(line, '^\s*([0-9]+)\s+([0-9]{8})\s+([0-9]+)\s+([0-9]+\.[0-9]+)\s*$', 1) AS customer_text,
        regexp_extract(line, '^\s*([0-9]+)\s+([0-9]{8})\s+([0-9]+)\s+([0-9]+\.[0-9]+)\s*$', 2) AS date_text,
        regexp_extract(line, '^\s*([0-9]+)\s+([0-9]{8})\s+([0-9]+)\s+([0-9]+\.[0-9]+)\s*$', 3) AS cds_text,
        regexp_extract(line, '^\s*([0-9]+)\s+([0-9]{8})\s+([0-9]+)\s+([0-9]+\.[0-9]+)\s*$', 4) AS amount_text
    FROM bronze.cdnow_transactions
)
SELECT
    md5(concat_ws('|', _source_file, line, CAST(copy_number AS VARCHAR))) AS transaction_id,
    TRY_CAST(customer_text AS BIGINT) AS customer_id,
    try_strptime(date_text, '%Y%m%d') AS purchased_at,
    TRY_CAST(cds_text AS INTEGER) AS cds,
    TRY_CAST(amount_text AS DOUBLE) AS amount,
    _source_file AS source_file
FROM fields
