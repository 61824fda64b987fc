MERGE INTO `main`.`sh op`.`or``ders.v2` AS t
USING (
  SELECT `id`, `evil'); DROP TABLE x; -- \`, `Customer Name`, `a.b`, `qty`, `_cdc_op`, `_cdc_ts`, `_cdc_deleted`, `_cdc_position`, `_kafka_topic`, `_kafka_partition`, `_kafka_offset`, `_kafka_timestamp`, `we``ird`, `tags`, `_rescued_data`
  FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY `id`, `evil'); DROP TABLE x; -- \` ORDER BY `_cdc_position` DESC NULLS LAST, `_cdc_ts` DESC NULLS LAST, `_kafka_partition` DESC NULLS LAST, `_kafka_offset` DESC NULLS LAST, `_kafka_topic` DESC NULLS LAST) AS `_deltasink_rn`
    FROM (
      SELECT CAST(`id` AS BIGINT) AS `id`, `evil'); DROP TABLE x; -- \` AS `evil'); DROP TABLE x; -- \`, `Customer Name` AS `Customer Name`, CAST(`a.b` AS DECIMAL(12,4)) AS `a.b`, `qty` AS `qty`, `_cdc_op` AS `_cdc_op`, `_cdc_ts` AS `_cdc_ts`, `_cdc_deleted` AS `_cdc_deleted`, `_cdc_position` AS `_cdc_position`, `_kafka_topic` AS `_kafka_topic`, `_kafka_partition` AS `_kafka_partition`, `_kafka_offset` AS `_kafka_offset`, `_kafka_timestamp` AS `_kafka_timestamp`, CAST(NULL AS STRUCT<`x y`: INT, `z`: TIMESTAMP>) AS `we``ird`, CAST(NULL AS ARRAY<STRING>) AS `tags`, CAST(NULL AS STRING) AS `_rescued_data` FROM parquet.`s3://deltasink-staging/staging/main.sh%20op.or%60ders%2Ev2/cdc.shop.orders/0/100-199.parquet`
      UNION ALL
      SELECT `ID` AS `id`, `evil'); DROP TABLE x; -- \` AS `evil'); DROP TABLE x; -- \`, CAST(`customer name` AS STRING) AS `Customer Name`, `a.b` AS `a.b`, CAST(NULL AS BIGINT) AS `qty`, `_cdc_op` AS `_cdc_op`, `_cdc_ts` AS `_cdc_ts`, `_cdc_deleted` AS `_cdc_deleted`, `_cdc_position` AS `_cdc_position`, `_kafka_topic` AS `_kafka_topic`, `_kafka_partition` AS `_kafka_partition`, `_kafka_offset` AS `_kafka_offset`, `_kafka_timestamp` AS `_kafka_timestamp`, `we``ird` AS `we``ird`, `tags` AS `tags`, NULLIF(to_json(struct(CAST(`qty` AS STRING) AS `qty`)), '{}') AS `_rescued_data` FROM parquet.`s3://deltasink-staging/staging/it's here/cdc.shop.orders/1/0-9.parquet`
    ) AS u
  ) AS ranked
  WHERE `_deltasink_rn` = 1
) AS s
ON t.`id` = s.`id` AND t.`evil'); DROP TABLE x; -- \` = s.`evil'); DROP TABLE x; -- \`
WHEN MATCHED AND (
  COALESCE(s.`_cdc_position` > t.`_cdc_position`, s.`_cdc_position` IS NOT NULL AND t.`_cdc_position` IS NULL)
  OR (s.`_cdc_position` <=> t.`_cdc_position` AND COALESCE(s.`_cdc_ts` > t.`_cdc_ts`, s.`_cdc_ts` IS NOT NULL AND t.`_cdc_ts` IS NULL))
  OR (s.`_cdc_position` <=> t.`_cdc_position` AND s.`_cdc_ts` <=> t.`_cdc_ts` AND COALESCE(s.`_kafka_partition` > t.`_kafka_partition`, s.`_kafka_partition` IS NOT NULL AND t.`_kafka_partition` IS NULL))
  OR (s.`_cdc_position` <=> t.`_cdc_position` AND s.`_cdc_ts` <=> t.`_cdc_ts` AND s.`_kafka_partition` <=> t.`_kafka_partition` AND COALESCE(s.`_kafka_offset` > t.`_kafka_offset`, s.`_kafka_offset` IS NOT NULL AND t.`_kafka_offset` IS NULL))
  OR (s.`_cdc_position` <=> t.`_cdc_position` AND s.`_cdc_ts` <=> t.`_cdc_ts` AND s.`_kafka_partition` <=> t.`_kafka_partition` AND s.`_kafka_offset` <=> t.`_kafka_offset` AND COALESCE(s.`_kafka_topic` > t.`_kafka_topic`, s.`_kafka_topic` IS NOT NULL AND t.`_kafka_topic` IS NULL))
) THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
