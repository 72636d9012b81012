-- gold.taxi_daily: per pickup day and pickup zone.
SELECT
    pickup_date,
    pu_location_id AS pickup_zone,
    count(*) AS trips,
    sum(passenger_count) AS passengers,
    round(avg(trip_distance), 3) AS avg_distance,
    round(avg(trip_minutes), 2) AS avg_minutes,
    round(avg(fare_amount), 2) AS avg_fare,
    round(sum(total_amount), 2) AS revenue,
    round(avg(CASE WHEN payment_type = 1 AND fare_amount > 0 THEN tip_amount / fare_amount END), 4) AS card_tip_rate
FROM silver.taxi_trips
GROUP BY pickup_date, pu_location_id
ORDER BY pickup_date, pickup_zone
