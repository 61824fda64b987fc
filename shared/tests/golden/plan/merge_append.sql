MERGE INTO `shop`.`order events` AS t
USING (
  SELECT `id`, `n`, `_cdc_op`, `_cdc_ts`, `_cdc_deleted`, `_cdc_position`, `_kafka_topic`, `_kafka_partition`, `_kafka_offset`, `_kafka_timestamp`, `extra`
  FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY `_kafka_topic`, `_kafka_partition`, `_kafka_offset` ORDER BY `_kafka_topic`, `_kafka_partition`, `_kafka_offset`) AS `_deltasink_rn`
    FROM (
      SELECT `id` AS `id`, CAST(`n` AS BIGINT) AS `n`, `_cdc_op` AS `_cdc_op`, `_cdc_ts` AS `_cdc_ts`, `_cdc_deleted` AS `_cdc_deleted`, `_cdc_position` AS `_cdc_position`, `_kafka_topic` AS `_kafka_topic`, `_kafka_partition` AS `_kafka_partition`, `_kafka_offset` AS `_kafka_offset`, `_kafka_timestamp` AS `_kafka_timestamp`, CAST(NULL AS BOOLEAN) AS `extra` FROM parquet.`s3://deltasink-staging/staging/shop.order%20events/orders/3/0-99.parquet`
      UNION ALL
      SELECT `id` AS `id`, `n` AS `n`, `_cdc_op` AS `_cdc_op`, `_cdc_ts` AS `_cdc_ts`, `_cdc_deleted` AS `_cdc_deleted`, `_cdc_position` AS `_cdc_position`, `_kafka_topic` AS `_kafka_topic`, `_kafka_partition` AS `_kafka_partition`, `_kafka_offset` AS `_kafka_offset`, `_kafka_timestamp` AS `_kafka_timestamp`, `extra` AS `extra` FROM parquet.`s3://deltasink-staging/staging/shop.order%20events/orders/3/50-149.parquet`
    ) AS u
  ) AS ranked
  WHERE `_deltasink_rn` = 1
) AS s
ON t.`_kafka_topic` = s.`_kafka_topic` AND t.`_kafka_partition` = s.`_kafka_partition` AND t.`_kafka_offset` = s.`_kafka_offset`
WHEN NOT MATCHED THEN INSERT (`id`, `n`, `_cdc_op`, `_cdc_ts`, `_cdc_deleted`, `_cdc_position`, `_kafka_topic`, `_kafka_partition`, `_kafka_offset`, `_kafka_timestamp`, `extra`) VALUES (s.`id`, s.`n`, s.`_cdc_op`, s.`_cdc_ts`, s.`_cdc_deleted`, s.`_cdc_position`, s.`_kafka_topic`, s.`_kafka_partition`, s.`_kafka_offset`, s.`_kafka_timestamp`, s.`extra`);
