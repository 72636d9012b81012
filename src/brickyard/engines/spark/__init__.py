"""The Spark engine: `SparkEngine` in `engine`, Arrow-equal text of Spark columns in
`text`. Its SQL translation, session and Delta I/O are still `brickyard.engines.spark_sql`,
`spark_session` and `spark_delta` (they move here in a later step)."""
