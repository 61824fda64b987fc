CREATE TABLE IF NOT EXISTS `main`.`sh op`.`or``ders.v2` (
  `id` INT,
  `evil'); DROP TABLE x; -- \` STRING,
  `Customer Name` STRING,
  `a.b` DECIMAL(10,2),
  `qty` BIGINT,
  `_cdc_op` STRING,
  `_cdc_ts` TIMESTAMP,
  `_cdc_deleted` BOOLEAN,
  `_cdc_position` STRING,
  `_kafka_topic` STRING,
  `_kafka_partition` INT,
  `_kafka_offset` BIGINT,
  `_kafka_timestamp` TIMESTAMP
)
USING DELTA
TBLPROPERTIES (
  'delta.enableTypeWidening' = 'true',
  'delta.autoOptimize.optimizeWrite' = 'true',
  'delta.autoOptimize.autoCompact' = 'true',
  'deltasink.mode' = 'upsert',
  'deltasink.primary_key' = '["id","evil\'); DROP TABLE x; -- \\\\"]'
);
