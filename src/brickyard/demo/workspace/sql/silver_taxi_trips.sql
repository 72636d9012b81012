-- silver.taxi_trips: one row per trip, typed and cleaned, with derived columns.
-- Rows that break contracts/silver.taxi_trips.yaml go to silver.taxi_trips__quarantine.
SELECT
    md5(concat_ws('|', _source_file, tlc_row_id, vendor_id, pickup_at, dropoff_at,
                  pu_location_id, do_location_id, trip_distance, total_amount)) AS trip_id,
    vendor_id,
    pickup_at,
    dropoff_at,
    CAST(pickup_at AS DATE) AS pickup_date,
    hour(pickup_at) AS pickup_hour,
    passenger_count,
    trip_distance,
    round(date_diff('second', pickup_at, dropoff_at) / 60.0, 2) AS trip_minutes,
    CASE WHEN trip_distance > 0 THEN round(fare_amount / trip_distance, 2) END AS fare_per_mile,
    rate_code_id,
    pu_location_id,
    do_location_id,
    payment_type,
    fare_amount,
    tip_amount,
    tolls_amount,
    total_amount,
    _source_file AS source_file
FROM bronze.taxi_trips
