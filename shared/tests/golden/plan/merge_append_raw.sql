MERGE INTO `raw events` AS t
USING (
  SELECT `key`, `value`, `stream_record_timestamp`, `kafka_topic`, `kafka_partition`, `kafka_offset`, `record_source`
  FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY `kafka_topic`, `kafka_partition`, `kafka_offset` ORDER BY `kafka_topic`, `kafka_partition`, `kafka_offset`) AS `_deltasink_rn`
    FROM (
      SELECT `key` AS `key`, `value` AS `value`, `stream_record_timestamp` AS `stream_record_timestamp`, `kafka_topic` AS `kafka_topic`, `kafka_partition` AS `kafka_partition`, `kafka_offset` AS `kafka_offset`, `record_source` AS `record_source` FROM parquet.`s3://deltasink-staging/staging/raw%20events/events/0/0-99.parquet`
      UNION ALL
      SELECT `key` AS `key`, `value` AS `value`, `stream_record_timestamp` AS `stream_record_timestamp`, `kafka_topic` AS `kafka_topic`, `kafka_partition` AS `kafka_partition`, `kafka_offset` AS `kafka_offset`, `record_source` AS `record_source` FROM parquet.`s3://deltasink-staging/staging/raw%20events/events/1/0-99.parquet`
    ) AS u
  ) AS ranked
  WHERE `_deltasink_rn` = 1
) AS s
ON t.`kafka_topic` = s.`kafka_topic` AND t.`kafka_partition` = s.`kafka_partition` AND t.`kafka_offset` = s.`kafka_offset`
WHEN NOT MATCHED THEN INSERT (`key`, `value`, `stream_record_timestamp`, `kafka_topic`, `kafka_partition`, `kafka_offset`, `record_source`) VALUES (s.`key`, s.`value`, s.`stream_record_timestamp`, s.`kafka_topic`, s.`kafka_partition`, s.`kafka_offset`, s.`record_source`);
