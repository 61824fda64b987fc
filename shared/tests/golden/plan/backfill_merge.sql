MERGE INTO `main`.`raw`.`events` AS t
USING (
  SELECT `key`, `value`, `stream_record_timestamp`, `kafka_topic`, `kafka_partition`, `kafka_offset`, `record_source`
  FROM (
    SELECT p.*, ROW_NUMBER() OVER (PARTITION BY get_json_object(p.`value`, :dedup_path_0), p.`key` ORDER BY p.`stream_record_timestamp` DESC) AS `_deltasink_rn`
    FROM (
      SELECT src.`key` AS `key`,
             src.`value` AS `value`,
             src.`stream_record_timestamp` AS `stream_record_timestamp`,
             src.`kafka_topic` AS `kafka_topic`,
             src.`kafka_partition` AS `kafka_partition`,
             src.`kafka_offset` AS `kafka_offset`,
             :backfill_source AS `record_source`
      FROM `main`.`legacy`.`events` AS src
    ) AS p
  ) AS ranked
  WHERE `_deltasink_rn` = 1
) AS s
ON get_json_object(t.`value`, :dedup_path_0) <=> get_json_object(s.`value`, :dedup_path_0)
  AND t.`key` <=> s.`key`
WHEN NOT MATCHED THEN INSERT *;
