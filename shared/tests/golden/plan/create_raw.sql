CREATE TABLE IF NOT EXISTS `raw events` (
  `key` STRING,
  `value` STRING,
  `stream_record_timestamp` TIMESTAMP,
  `kafka_topic` STRING,
  `kafka_partition` INT,
  `kafka_offset` BIGINT,
  `record_source` STRING
)
USING DELTA
TBLPROPERTIES (
  'delta.enableTypeWidening' = 'true',
  'delta.autoOptimize.optimizeWrite' = 'true',
  'delta.autoOptimize.autoCompact' = 'true',
  'deltasink.mode' = 'raw',
  'deltasink.primary_key' = '[]'
);
